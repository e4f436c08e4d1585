"""campaigns.yaml and templates/ -> a typed, validated campaign model: positions, timing, templates."""
