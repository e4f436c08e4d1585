"""The cost of removing script URLs (`javascript:` and kin) from each e-mail's HTML,
against the render it is part of, in the same run.

Renders the shipped `research-thanks` e-mail (subject, HTML, text part, footer, CSS
inlined: `Renderer.email`) for N different leads, then runs `without_script_urls` on
each message's HTML. Prints both per message and the ratio.

    python -m bench.script_urls [N]
"""

from __future__ import annotations

import sys
import time


def main(n: int = 2000) -> None:
    from bench.shipped import research_thanks
    from dripper.campaign import templates as render

    shipped = research_thanks(n)
    renderer, campaign, step, contexts = shipped.renderer, shipped.campaign, shipped.step, shipped.contexts
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
