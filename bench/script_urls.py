"""The cost of removing script URLs (`javascript:` and kin) from each e-mail's HTML,
against the render it is part of, in the same run.

Renders the shipped `research-thanks` e-mail (subject, HTML, text part, footer, CSS
inlined: `Renderer.email`) for N different leads, then runs `without_script_urls` on
each message's HTML. Prints both per message and the ratio.

    python bench/script_urls.py [N]
"""

from __future__ import annotations

import sys
import time
from datetime import datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def main(n: int = 2000) -> None:
    from dripper import campaigns, render

    config = campaigns.load(ROOT / "campaigns.yaml")
    templates = render.TemplateSet.load(ROOT / "templates")
    renderer = render.Renderer(config, templates)
    campaign = config.campaigns["literature-follow-up"]
    _stage, step = campaign.step("research-thanks")
    lead = render.sample_lead(config)
    now = datetime.now().astimezone()
    contexts = []
    for i in range(n):
        view = render.LeadView(**{**lead.__dict__, "first_name": f"Lead{i}", "attrs": {"product": f"valve {i}"}})
        contexts.append(renderer.context(view, campaign, step, f"https://x.example/u/{i}", now))
    htmls = [renderer.body_html(step, ctx) for ctx in contexts]

    start = time.perf_counter()
    for ctx in contexts:
        renderer.email(campaign, step, ctx)
    whole = time.perf_counter() - start  # includes one scrub per message
    start = time.perf_counter()
    for html in htmls:
        render.without_script_urls(html)
    scrub = time.perf_counter() - start
    size = sum(map(len, htmls)) // n
    print(f"messages: {n} (HTML {size} characters each)")
    print(f"Renderer.email      : {whole / n * 1e6:8.1f} µs a message")
    print(f"without_script_urls : {scrub / n * 1e6:8.1f} µs a message")
    print(f"ratio               : {scrub / whole:.1%} of the render")


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 2000)
