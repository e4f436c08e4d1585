"""CSS inlining per message: premailer (the common choice) vs css-inline (what dripper uses).

Renders the shipped `research-thanks` e-mail for N different leads and inlines each,
both ways, in the same run. Prints messages/second and the ratio.

    python -m bench.inline_css [N]
"""

from __future__ import annotations

from bench._common import count_argument, timed


def main(n: int = 2000) -> None:
    import css_inline
    import premailer

    from bench.shipped import research_thanks

    shipped = research_thanks(n)
    htmls = [shipped.renderer.body_html(shipped.step, ctx) for ctx in shipped.contexts]

    inliner = css_inline.CSSInliner(keep_style_tags=False, load_remote_stylesheets=False)
    fast = timed(inliner.inline, htmls)
    slow = timed(lambda h: premailer.transform(h, disable_validation=True, cssutils_logging_level="CRITICAL"), htmls)
    print(f"messages: {n}")
    print(f"premailer.transform : {n / slow:9.0f} msg/s  ({slow / n * 1e3:.3f} ms each)")
    print(f"css_inline          : {n / fast:9.0f} msg/s  ({fast / n * 1e3:.3f} ms each)")
    print(f"ratio               : css_inline is {slow / fast:.1f}x faster")


if __name__ == "__main__":
    main(count_argument(2000))
