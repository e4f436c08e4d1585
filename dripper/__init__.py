"""dripper: long follow-up sequences (drips) to sales leads, driven by campaigns.yaml."""

__version__ = "0.1.0"
