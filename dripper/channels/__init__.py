"""The ways a touch reaches a lead: e-mail, letters, calls."""
