"""The cost of removing script URLs (`javascript:` and kin) from each e-mail's HTML,
against the render it is part of, in the same run.

Renders the shipped `research-thanks` e-mail (subject, HTML, text part, footer, CSS
inlined: `Renderer.email`) for N different leads, then runs `without_script_urls` on
each message's HTML. Prints both per message and the ratio.

    python -m bench.script_urls [N]
"""

from __future__ import annotations

from bench._common import count_argument, timed


def main(n: int = 2000) -> None:
    from bench.shipped import research_thanks
    from dripper.campaign import templates as render

    shipped = research_thanks(n)
    renderer, campaign, step, contexts = shipped.renderer, shipped.campaign, shipped.step, shipped.contexts
    htmls = [renderer.body_html(step, ctx) for ctx in contexts]

    whole = timed(lambda ctx: renderer.email(campaign, step, ctx), contexts)  # includes one scrub per message
    scrub = timed(render.without_script_urls, htmls)
    size = sum(map(len, htmls)) // n
    print(f"messages: {n} (HTML {size} characters each)")
    print(f"Renderer.email      : {whole / n * 1e6:8.1f} µs a message")
    print(f"without_script_urls : {scrub / n * 1e6:8.1f} µs a message")
    print(f"ratio               : {scrub / whole:.1%} of the render")


if __name__ == "__main__":
    main(count_argument(2000))
