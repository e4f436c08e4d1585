"""Print adapters: who takes a batch's letters to the post.

- `files` (the default): the merged PDF and its manifest wait under letters/DAY/ for
  someone to print them; `dripper letters mark-mailed DAY` records the hand-off.
- `http`: a print-and-post service takes each letter over HTTP (one multipart POST per
  letter: the PDF and its metadata, with an Idempotency-Key so a retry never prints a
  letter twice). Once every letter of a batch is taken, the batch is marked mailed.
- Anything installed under the entry-point group `dripper.print_adapters`: a callable
  taking the `letters:` settings and returning a `PrintAdapter`.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from importlib.metadata import EntryPoint, entry_points
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

from dripper.campaign.model import Letters

if TYPE_CHECKING:  # imported where it is used: only the http adapter needs it
    import httpx

log = logging.getLogger("dripper.printing")
ENTRY_POINTS = "dripper.print_adapters"


@dataclass(frozen=True)
class PrintJob:
    touch: int
    file: Path
    pages: int
    format: str
    address: Sequence[str]
    email: str
    campaign: str
    step: str

    @property
    def idempotency_key(self) -> str:
        """The same letter always gets the same key, whatever database it came from."""
        digest = hashlib.sha256(f"{self.campaign}\0{self.step}\0{self.email}".encode()).hexdigest()
        return f"dripper-{digest[:32]}"


@dataclass(frozen=True)
class Submitted:
    accepted: dict[int, str]  # touch -> the service's reference ("rejected: …" when refused for good)
    failed: int = 0  # transient failures: tried again on the next tick


class PrintAdapter(Protocol):
    name: str
    hands_off: bool  # True: taking the letters is mailing them (the batch is marked mailed)

    def submit(self, jobs: Sequence[PrintJob]) -> Submitted: ...


class FilesAdapter:
    """The batch stays on disk for a person (or a printer's hot folder) to take."""

    name = "files"
    hands_off = False

    def __init__(self, _settings: Letters):
        pass

    def submit(self, jobs: Sequence[PrintJob]) -> Submitted:
        return Submitted({})


class HttpAdapter:
    """POST each letter to a print-and-post API: multipart `file` (the PDF) and `metadata`
    (JSON: address lines, format, pages, campaign, step, lead e-mail); `Authorization:
    Bearer` from the environment variable `letters.http.token_env`. A 2xx answer's JSON
    `id` is kept as the reference; 408, 429 and 5xx are retried later; other 4xx mean the
    service refused the letter for good."""

    name = "http"
    hands_off = True

    def __init__(self, settings: Letters):
        if settings.http is None:
            raise ValueError("letters.adapter http needs letters.http.url")
        self.config = settings.http

    def submit(self, jobs: Sequence[PrintJob]) -> Submitted:
        import httpx

        headers = {}
        token = os.environ.get(self.config.token_env)
        if token:
            headers["Authorization"] = f"Bearer {token}"
        accepted: dict[int, str] = {}
        failed = 0
        with httpx.Client(timeout=self.config.timeout, headers=headers) as client:
            for job in jobs:
                try:
                    ref = self._post(client, job)
                except httpx.HTTPError as exc:
                    log.warning("print service: letter %s not taken yet: %s", job.touch, exc)
                    failed += 1
                    continue
                if ref is None:
                    failed += 1
                else:
                    accepted[job.touch] = ref
        return Submitted(accepted, failed)

    def _post(self, client: httpx.Client, job: PrintJob) -> str | None:
        metadata = {
            "address": list(job.address),
            "format": job.format,
            "pages": job.pages,
            "email": job.email,
            "campaign": job.campaign,
            "step": job.step,
            "reference": job.idempotency_key,
        }
        with open(job.file, "rb") as pdf:
            response = client.post(
                self.config.url,
                headers={"Idempotency-Key": job.idempotency_key},
                data={"metadata": json.dumps(metadata)},
                files={"file": (job.file.name, pdf, "application/pdf")},
            )
        if response.is_success:
            try:
                body = response.json()
            except ValueError:
                body = {}
            return str(body.get("id") or f"http-{response.status_code}") if isinstance(body, dict) else "accepted"
        if response.status_code in (408, 429) or response.status_code >= 500:
            log.warning("print service answered %s for letter %s; trying again later", response.status_code, job.touch)
            return None
        log.error("print service refused letter %s: %s %s", job.touch, response.status_code, response.text[:200])
        return f"rejected: {response.status_code} {response.text[:150]}"


BUILT_IN: dict[str, Callable[[Letters], PrintAdapter]] = {"files": FilesAdapter, "http": HttpAdapter}


def _installed() -> dict[str, EntryPoint]:
    return {ep.name: ep for ep in entry_points(group=ENTRY_POINTS)}


def adapter_names() -> set[str]:
    return set(BUILT_IN) | set(_installed())


def make_adapter(settings: Letters) -> PrintAdapter:
    factory = BUILT_IN.get(settings.adapter)
    if factory is None:
        entry = _installed().get(settings.adapter)
        if entry is None:
            raise ValueError(f"unknown print adapter {settings.adapter!r}")
        factory = entry.load()
    return factory(settings)


__all__ = ["FilesAdapter", "HttpAdapter", "PrintAdapter", "PrintJob", "Submitted", "adapter_names", "make_adapter"]
