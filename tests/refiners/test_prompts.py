"""ProX prompt formats, byte for byte, with the real Llama-2 tokenizer (refiners/assets/llama2)."""

from __future__ import annotations

import pytest

from curate.refiners.prompts import PromptBuilder, chat_prompt, load_tokenizer

SYS = "<s>[INST] <<SYS>>\nYou are a helpful, respectful and honest assistant.\n<</SYS>>\n\n"


@pytest.fixture(scope="module")
def builder() -> PromptBuilder:
    return PromptBuilder()


def test_doc_prompt_exact_string_and_ids(builder: PromptBuilder) -> None:
    p = builder.doc_prompts(["Hello world.\nSecond line.\n\n"])[0]
    # the Llama-2 chat template strips the user turn: trailing newlines do not reach the model
    assert p.text == SYS + "Hello world.\nSecond line. [/INST]"
    # canonical Llama-2 chat ids: one BOS, "▁[" "INST" "]", "▁<<" "SY" "S" ">>", "\n" ... "▁[" "/" "INST" "]"
    assert p.token_ids[:9] == [1, 518, 25580, 29962, 3532, 14816, 29903, 6778, 13]
    assert p.token_ids[-4:] == [518, 29914, 25580, 29962]
    assert p.token_ids.count(1) == 1


def test_chat_prompt_matches_template() -> None:
    # the template strips the whole turn (system block + user), so only trailing spaces go
    assert chat_prompt("  x  ") == SYS + "  x [/INST]"
    assert chat_prompt("u", system="S") == "<s>[INST] <<SYS>>\nS\n<</SYS>>\n\nu [/INST]"


def test_no_double_bos_and_no_injected_special_tokens(builder: PromptBuilder) -> None:
    doc = "before <s> middle </s> after"
    p = builder.doc_prompts([doc])[0]
    assert p.text.count("<s>") == 2  # the template's and the document's, as text
    assert p.token_ids[0] == 1 and p.token_ids.count(1) == 1 and 2 not in p.token_ids
    for c in builder.chunk_prompts([doc])[0]:
        assert c.token_ids[0] == 1 and c.token_ids.count(1) == 1


def test_chunk_prompt_exact(builder: PromptBuilder) -> None:
    [[c]] = builder.chunk_prompts(["Hello world.\nSecond line.\n\nThird"])
    assert c.text == SYS + "[doc]\n[000]Hello world.\n[001]Second line.\n[002]\n[003]Third\n[/doc] [/INST]"
    assert (c.first_line, c.last_line) == (0, 3)


def test_greedy_packing_counts_lines_like_prox() -> None:
    # ProX counts len(tokenizer.encode("[NNN]line")) with its BOS: 9, 9, 6, 8 tokens here
    b = PromptBuilder(max_chunk_tokens=20)
    [chunks] = b.chunk_prompts(["Hello world.\nSecond line.\n\nThird"])
    assert [c.text for c in chunks] == [
        SYS + "[doc]\n[000]Hello world.\n[001]Second line.\n[/doc] [/INST]",
        SYS + "[doc]\n[002]\n[003]Third\n[/doc] [/INST]",
    ]
    assert [(c.first_line, c.last_line) for c in chunks] == [(0, 1), (2, 3)]
    # exactly at the limit still fits: 9 + 9 = 18
    [chunks] = PromptBuilder(max_chunk_tokens=18).chunk_prompts(["Hello world.\nSecond line."])
    assert len(chunks) == 1
    [chunks] = PromptBuilder(max_chunk_tokens=17).chunk_prompts(["Hello world.\nSecond line."])
    assert len(chunks) == 2


def test_numbering_is_global_and_widens_past_999(builder: PromptBuilder) -> None:
    text = "\n".join(f"l{i}" for i in range(1002))
    chunks = PromptBuilder(max_chunk_tokens=200).chunk_prompts([text])[0]
    assert len(chunks) > 1
    body = "\n".join(c.text[len(SYS) + len("[doc]\n") : -len("\n[/doc] [/INST]")] for c in chunks)
    assert body.split("\n")[0] == "[000]l0"
    assert body.split("\n")[999] == "[999]l999"
    assert body.split("\n")[1001] == "[1001]l1001"
    assert [c.first_line for c in chunks][1:] == [c.last_line + 1 for c in chunks][:-1]


def test_over_long_line_gets_its_own_cut_chunk() -> None:
    b = PromptBuilder(max_chunk_tokens=30)
    long = " ".join(["word"] * 100)
    [chunks] = b.chunk_prompts([f"short\n{long}\nend"])
    assert [(c.first_line, c.last_line, c.truncated_lines) for c in chunks] == [(0, 0, []), (1, 1, [1]), (2, 2, [])]
    cut = chunks[1].text[len(SYS) + len("[doc]\n") : -len("\n[/doc] [/INST]")]
    assert cut.startswith("[001]word word") and len(cut) < len(long)
    assert len(b.tok.encode(cut).ids) <= 30  # with its BOS, as ProX counts


def test_doc_truncated_to_max_tokens(builder: PromptBuilder) -> None:
    doc = " ".join(f"w{i}" for i in range(3000))
    p = builder.doc_prompts([doc])[0]
    assert p.text.endswith(" [/INST]")
    user = p.text[len(SYS) : -len(" [/INST]")]
    assert doc.startswith(user) and len(user) < len(doc)
    n = len(builder.tok.encode(user, add_special_tokens=False).ids)
    assert 1990 <= n <= 2000
    short = "short document"
    assert builder.doc_prompts([short])[0].text == SYS + short + " [/INST]"


def test_tokenizing_is_batched() -> None:
    real = load_tokenizer(None)
    calls: list[tuple[str, int]] = []

    class Spy:
        encode_special_tokens = True

        def token_to_id(self, t: str) -> int | None:
            return real.token_to_id(t)

        def encode_batch(self, items, **kw):  # noqa: ANN001, ANN003, ANN201
            calls.append(("encode_batch", len(items)))
            return real.encode_batch(items, **kw)

        def encode(self, item, **kw):  # noqa: ANN001, ANN003, ANN201
            calls.append(("encode", 1))
            return real.encode(item, **kw)

    b = PromptBuilder(Spy())  # type: ignore[arg-type]
    docs = ["\n".join(f"line {i} of doc {d}" for i in range(50)) for d in range(20)]
    b.chunk_prompts(docs)
    # one batch for all 1000 lines, one for all prompts; never one call per line
    assert calls == [("encode_batch", 1000), ("encode_batch", 20)]
