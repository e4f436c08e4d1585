"""`python -m dripper.translations`: each shipped `.po` brought in step with the sources."""

from dripper.translations import update

update()
