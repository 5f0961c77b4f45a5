"""``kgkd graph validate | show | query`` through the real CLI entry point."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from kgkd.cli import main
from kgkd.paths import graphs_dir

SENTIMENT = str(graphs_dir() / "sentiment.ttl")
DIGITS = str(graphs_dir() / "digits.ttl")


def test_validate_ok(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["graph", "validate", DIGITS]) == 0
    assert "digits.ttl: valid (5 domains, 4 teachers, 40 labels" in capsys.readouterr().out


def test_validate_reports_error_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    bad = tmp_path / "bad.ttl"
    bad.write_text("@prefix kgkd: <https://w3id.org/kgkd/vocab#> .\n\n<http://x/a> a kgkd:Domain\n")
    assert main(["graph", "validate", str(bad)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("kgkd: error: ") and f"{bad}:4: malformed turtle" in err


def test_show_prints_summary_and_writes_png(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "pics" / "sentiment.png"
    assert main(["graph", "show", SENTIMENT, "--out", str(out)]) == 0
    text = capsys.readouterr().out
    assert "domains     11" in text and re.search(r"teacher_nyt\s+hf:minilm\s+nyt_editorials", text)
    data = out.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) > 20_000
    from PIL import Image

    with Image.open(out) as img:
        assert img.width > 800 and img.height > 500
    assert not list(out.parent.glob(".*.tmp"))  # atomic write left nothing behind


def test_query_table_and_ask(capsys: pytest.CaptureFixture[str]) -> None:
    q = "SELECT ?d ?r WHERE { ?d a kgkd:Domain ; kgkd:resolution ?r } ORDER BY ?r ?d"
    assert main(["graph", "query", DIGITS, q]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].split() == ["d", "r"]
    assert [line.split() for line in lines[2:]] == [
        [":uci_digits", "8"],
        [":usps", "16"],
        [":fashion_mnist", "28"],
        [":mnist", "28"],
        [":svhn", "32"],
    ]
    assert main(["graph", "query", DIGITS, "ASK { :svhn kgkd:isPhoto true }"]) == 0
    assert capsys.readouterr().out.strip() == "true"


def test_query_service_refused(capsys: pytest.CaptureFixture[str]) -> None:
    code = main(
        [
            "graph",
            "query",
            SENTIMENT,
            "SELECT * WHERE { SERVICE <http://example.org/sparql> { ?s ?p ?o } }",
        ]
    )
    assert code == 2
    assert "refusing SPARQL query with a SERVICE clause" in capsys.readouterr().err
