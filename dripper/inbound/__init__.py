"""Inbound mail: classify what came back, match it to its lead and touch, apply it."""

from dripper.inbound.classify import KINDS, Classification, classify
from dripper.inbound.ingest import Ingested, Ingestor

__all__ = ["KINDS", "Classification", "Ingested", "Ingestor", "classify"]
