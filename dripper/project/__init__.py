"""`dripper init`: a small working project (campaigns.yaml, a handful of templates, an
example leads.csv), written from the skeleton shipped as package data in skeleton/."""
