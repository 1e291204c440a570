"""The item page says each thing once; cards show authors and the source's display name (#13, #14)."""

from __future__ import annotations

import json
import re
from datetime import datetime

from digest import render
from digest.claims import extract_claims
from digest.config import SiteConfig
from digest.models import Claim, Item, Topic
from digest.store import ItemView

SITE = SiteConfig(title="T", base_url="https://digest.test/", source_titles=(("arxiv-lg", "arXiv cs.LG"),))
TOPICS = [Topic(slug="speculative-decoding", name="Speculative decoding", description="", keywords="[]")]
SUMMARY = (
    "Speculative decoding trades extra computation for lower latency. We present DFlash, a block diffusion drafter. "
    "DFlash achieves a 6.17x lossless speedup on Qwen3-8B and 2.5x over EAGLE-3, while cutting memory by 31%. "
    "The drafter is trained in 11 days on 8 GPUs. We release code and models for the community."
)


def finding_view(n: int = 1, *, kind: str = "paper", source: str = "arxiv-lg", authors=None, summary=SUMMARY):
    claims = [
        Claim(id=n * 100 + i, item_id=n, value=c.value, value_hi=c.value_hi, unit=c.unit, kind=c.kind,
              direction=c.direction, qualifier=c.qualifier, subject=c.subject, baseline=c.baseline, text=c.text,
              start=c.start, end=c.end)
        for i, c in enumerate(extract_claims(summary))
    ]  # fmt: skip
    paper = kind == "paper"
    item = Item(
        id=n,
        key=f"k{n}",
        kind=kind,
        source=source,
        title=f"DFlash {n}",
        summary=summary,
        url=f"https://arxiv.org/abs/2602.{n:05d}" if paper else f"https://blog.test/{n}",
        pdf_url=f"https://arxiv.org/pdf/2602.{n:05d}" if paper else "",
        arxiv_id=f"2602.{n:05d}" if paper else None,
        authors=json.dumps(authors if authors is not None else ["Jian Chen", "Yesheng Liang", "Zhijian Liu", "D Four"]),
        published=datetime(2026, 11, 24, 10),
    )
    post = Item(id=90 + n, key=f"p{n}", kind="post", source="deep-dives", title="Why DFlash is fast", covers_item_id=n,
                url="https://deep.test/dflash", published=datetime(2026, 11, 26))  # fmt: skip
    coverage = [post]
    return ItemView(item, [("speculative-decoding", 0.9)], claims, coverage if paper else [], {})


def article(pages, view) -> str:
    html = pages[render.item_path(view)].decode()
    return html[html.index("<article") : html.index("</article>")]


def text_of(html: str) -> str:
    return re.sub(r"\s+", " ", re.sub(r"<[^>]+>", "", html))


def test_item_page_says_each_sentence_once_in_order():
    view = finding_view()
    body = article(render.site_pages([view], TOPICS, SITE), view)
    abstract = body[body.index("<details data-pagefind-ignore><summary>Full abstract") :]
    shown = text_of(body[: body.index("Topics</h2>")])
    # Every sentence of the abstract appears at most once above the full abstract.
    for sentence in re.split(r"(?<=\.) ", SUMMARY):
        assert shown.count(sentence) <= 1, sentence
    # The three numbers of one sentence are highlighted inside that one sentence, which is shown once.
    speed = "DFlash achieves a 6.17x lossless speedup on Qwen3-8B and 2.5x over EAGLE-3, while cutting memory by 31%."
    assert shown.count(speed) == 1
    assert re.search(r'and <span class="num" id="claim-\d+" title="[^"]*">2.5x</span> over EAGLE-3', body)
    assert re.search(r'by <span class="num" id="claim-\d+" title="[^"]*">31%</span>\.', body)
    # Order: one-liner, headline, other claims, key points; then links, coverage, BibTeX, abstract.
    marks = ['class="one-line"', 'class="headline"', 'class="claims"', "Links</h2>", "Blog coverage</h2>", "BibTeX",
             "Full abstract"]  # fmt: skip
    at = [body.index(m) for m in marks]
    assert at == sorted(at)
    # Coverage links say the post's title once, with no "Coverage:" prefix, and the source's name.
    assert ">Why DFlash is fast</a>" in body and "Coverage:" not in body
    assert "Speculative decoding trades" in abstract
    # Every claim keeps its anchor exactly once (newsletter links point at #claim-ID).
    for c in view.claims:
        assert body.count(f'id="claim-{c.id}"') == 1, c


def test_key_points_leave_out_what_is_already_shown():
    view = finding_view()
    f = render.Finding(view, {}, SITE)
    shown = {f.one_line} | {s.text for s in f.claim_sentences}
    assert f.points and not shown & {p.text for p in f.points}


def test_blog_posts_say_post_not_full_abstract():
    view = finding_view(2, kind="post", source="deep-dives")
    body = article(render.site_pages([view], TOPICS, SITE), view)
    assert "<summary>Post</summary>" in body and "Full abstract" not in body and ">Original post</a>" in body


def test_cards_show_three_authors_et_al_and_the_source_display_name():
    many, two = finding_view(1), finding_view(2, authors=["Ada Lovelace", "Alan Turing"], source="blog-x")
    pages = render.site_pages([many, two], TOPICS, SITE)
    tag = pages["tags/speculative-decoding.html"].decode()
    cards = re.findall(r'<article class="finding">.*?</article>', tag, re.DOTALL)
    assert len(cards) == 2
    assert any("Jian Chen, Yesheng Liang, Zhijian Liu et al. · 2026-11-24 · arXiv cs.LG" in c for c in cards)
    assert any("Ada Lovelace, Alan Turing · 2026-11-24 · blog-x" in c for c in cards)  # no title: the name
    assert "D Four" not in tag and "arxiv-lg" not in tag
    assert render.short_authors(["A", "B", "C"]) == "A, B, C" and render.short_authors([]) == ""


def test_numbers_in_the_title_are_highlighted_in_the_heading_not_repeated():
    view = finding_view(3)
    title = "DFlash: 6x faster drafts"
    view.item.title = title
    span = title.index("6x")
    view.claims.append(Claim(id=399, item_id=3, value=6, unit="x", kind="speedup", text=title, start=span, end=span + 2,
                             field="title"))  # fmt: skip
    body = article(render.site_pages([view], TOPICS, SITE), view)
    assert '<h1>DFlash: <span class="num" id="claim-399" title="speedup">6x</span> faster drafts</h1>' in body
    assert body[: body.index("<details")].count("faster drafts") == 1  # BibTeX has it again
    # The headline's own sentence shows once, its number highlighted: as the one-liner (the result sentence),
    # else as a key point or a claim sentence.
    f = render.Finding(view, {}, SITE)
    head = f.headline_claim
    shown_as_point = any(p.text == head.text and any(c is head for _, c in p.parts) for p in f.points)
    assert f.one_line_source == head.text or shown_as_point or head.text in {s.text for s in f.claim_sentences}


def test_a_trimmed_one_liner_still_carries_its_numbers_and_its_sentence_is_not_repeated():
    view = finding_view(4)
    speed = next(c for c in view.claims if c.unit == "%").text
    f = render.Finding(view, {}, SITE)
    f.one_line = speed[: speed.index(", while")] + "…"  # as a rewritten one_line might trim it
    assert f.one_line_source == speed
    parts = f.one_line_parts
    assert [t for t, c in parts.parts if c is not None] == ["6.17x", "2.5x"]
    assert {c.id for c in parts.unplaced} == {c.id for c in view.claims if c.text == speed and c.unit == "%"}
    assert all(s.text != speed for s in f.claim_sentences) and all(p.text != speed for p in f.points)


def test_topics_show_a_confidence_word_not_a_bare_score():
    view = finding_view(5)
    view.tags[:] = [("speculative-decoding", 1.8), ("kv-cache", 1.3), ("quantization", 1.05)]
    topics = [*TOPICS, Topic(slug="kv-cache", name="KV cache", description="", keywords="[]"),
              Topic(slug="quantization", name="Quantization", description="", keywords="[]")]  # fmt: skip
    body = article(render.site_pages([view], topics, SITE), view)
    tags = body[body.index('<p class="tags"') :]
    words = re.findall(r'<span class="count">([^<]*)</span>', tags[: tags.index("</p>")])
    assert words == ["strong", "likely", "possible"]
    assert ">1.80<" not in body and 'title="fit 1.80' in body
