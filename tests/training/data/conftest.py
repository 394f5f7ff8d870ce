"""Raw sources for the curation tests, built in a temporary folder from the real Tajik data and a few texts of
our own, with planted duplicates, near-duplicates, PII, foreign-language documents and an evaluation passage.

One session-wide build (``built_corpus``) serves most tests; the resume test builds the same config again.
"""

from __future__ import annotations

import gzip
import io
import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml

from tajik.letters import RUSSIAN_KEYBOARD_FALLBACK
from training.data.build import BuildResult, build_corpus
from training.data.config import load_curation_config

PHONE = "+992 93 123 45 67"
LOCAL_PHONE = "(93) 555-12-34"
EMAIL = "ali.valiev@mail.tj"
IP = "95.142.88.10"
PASSPORT = "A1234567"

LESSON_FRACTIONS = """Дарси 12. Касрҳои одӣ

Каср қисми адади бутунро нишон медиҳад. Агар себро ба чор қисми баробар тақсим кунем, ҳар як қисм чоряки себ аст ва онро ҳамчун 1/4 менависем. Адади болоӣ сурат ва адади поёнӣ махраҷ ном дорад. Махраҷ нишон медиҳад, ки бутун ба чанд қисм тақсим шудааст, сурат бошад нишон медиҳад, ки чанд қисм гирифта шудааст.

Барои ҷамъ кардани касрҳое, ки махраҷи якхела доранд, суратҳоро ҷамъ мекунем ва махраҷро бетағйир мегузорем. Масалан, 1/5 + 2/5 = 3/5. Агар махраҷҳо гуногун бошанд, аввал онҳоро ба махраҷи умумӣ меорем ва баъд ҷамъ мекунем.

Супориш: дар дафтари худ се мисол нависед ва ҳалли онҳоро ба муаллим нишон диҳед.
"""

LESSON_RUDAKI = """Абӯабдуллоҳ Рӯдакӣ – одамушшуарои адабиёти форсу тоҷик

Рӯдакӣ дар деҳаи Панҷрӯди наздикии Панҷакент ба дунё омадааст. Ӯ дар дарбори Сомониён дар шаҳри Бухоро зиндагӣ ва эҷод кардааст. Шоир ба мусиқӣ низ шавқи зиёд дошт ва шеърҳои худро бо навохтани чанг мехонд. Аз мероси бузурги ӯ то замони мо ҳамагӣ як қисми хурд боқӣ мондааст.

Дар шеърҳои Рӯдакӣ панду ахлоқ, васфи табиат ва ишқ ҷои асосиро ишғол мекунанд. Мисраъҳои машҳури ӯ «Бӯи ҷӯи Мӯлиён ояд ҳаме» то имрӯз дар хотири мардум зиндаанд.

Савол барои мулоҳиза: чаро Рӯдакиро одамушшуаро меноманд? Ҷавоби худро бо мисолҳо аз шеърҳои шоир асоснок кунед.
"""


@dataclass(frozen=True)
class RawCorpus:
    """The raw sources and what was planted in them, for the tests to look for."""

    root: Path
    config_text: str
    web_texts: dict[str, str]
    exact_copy_of: str
    near_copy_of: str
    cross_source_copy_of: str
    eval_passage: str
    fallback_text: str

    def config(self, output_dir: Path) -> Path:
        path = output_dir.parent / f"{output_dir.name}.yaml"
        path.write_text(self.config_text.replace("OUTPUT_DIR", str(output_dir)), encoding="utf-8")
        return path


def _paragraphs(path: Path) -> list[str]:
    return [p.strip() for p in path.read_text(encoding="utf-8").split("\n\n") if p.strip()]


def _documents(path: Path, per_doc: int, count: int) -> list[str]:
    paragraphs = _paragraphs(path)
    return ["\n\n".join(paragraphs[i : i + per_doc]) for i in range(0, per_doc * count, per_doc)]


def _write_jsonl(path: Path, records: list[dict[str, Any]]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in records), encoding="utf-8")


def _write_fineweb2_parquet(path: Path, texts: list[str]) -> None:
    """The columns of FineWeb-2's tgk_Cyrl parquet files."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    path.parent.mkdir(parents=True, exist_ok=True)
    rows = [
        {
            "text": text,
            "id": f"<urn:uuid:fw2-{i:04d}>",
            "dump": "CC-MAIN-2024-10",
            "url": f"https://khovar.tj/2024/{i}",
            "date": "2024-02-21T10:00:00Z",
            "file_path": f"s3://commoncrawl/crawl-data/CC-MAIN-2024-10/segments/{i}.warc.gz",
            "language": "tgk",
            "language_score": 0.99,
            "language_script": "Cyrl",
            "minhash_cluster_size": 1,
            "top_langs": json.dumps({"tgk_Cyrl_score": 0.99}),
        }
        for i, text in enumerate(texts)
    ]
    pq.write_table(pa.Table.from_pylist(rows), path)


def _html(title: str, paragraphs: list[str]) -> str:
    body = "".join(f"<p>{p}</p>" for p in paragraphs)
    return (
        f"<!DOCTYPE html><html><head><meta charset='utf-8'><title>{title}</title></head><body>"
        "<nav><a href='/'>Асосӣ</a> | <a href='/news'>Хабарҳо</a> | <a href='/contact'>Тамос</a></nav>"
        f"<article><h1>{title}</h1>{body}</article>"
        "<footer>© 2016 Ҳамаи ҳуқуқҳо ҳифз шудаанд. Нусхабардорӣ бе иҷозат манъ аст.</footer></body></html>"
    )


def _write_warc(path: Path, pages: list[tuple[str, str]]) -> None:
    """A gzipped WARC with HTML responses, as Common Crawl publishes them, plus an image that must be skipped."""
    from warcio.statusandheaders import StatusAndHeaders
    from warcio.warcwriter import WARCWriter

    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("wb") as stream:
        writer = WARCWriter(stream, gzip=True)
        records = [(url, html.encode("utf-8"), "text/html") for url, html in pages]
        records.append(("https://example.tj/logo.png", b"\x89PNG\r\n\x1a\n" + bytes(64), "image/png"))
        for url, payload, mime in records:
            http = StatusAndHeaders("200 OK", [("Content-Type", mime)], protocol="HTTP/1.1")
            record = writer.create_warc_record(
                url,
                "response",
                payload=io.BytesIO(payload),
                length=len(payload),  # known up front, so warcio needs no temporary copy
                http_headers=http,
                warc_headers_dict={"WARC-Identified-Payload-Type": mime},
            )
            writer.write_record(record)


@pytest.fixture(scope="session")
def raw_corpus(shared_data: Path, tmp_path_factory: pytest.TempPathFactory) -> RawCorpus:
    root = tmp_path_factory.mktemp("raw")
    prose = shared_data / "prose"
    langid = shared_data / "langid"

    web = _documents(prose / "Payom_MajlisiOli_26_12_2018.txt", per_doc=6, count=30)
    web_texts = {f"web-{i:03d}": text for i, text in enumerate(web)}
    # The 2019 address is not otherwise in the corpus: the PII and contaminated documents come from it, so they
    # are nobody's near-duplicates.
    address_2019 = _paragraphs(prose / "Payom_MajlisiOli_26_12_2019.txt")
    eval_passage = max(address_2019[5:40], key=len)
    udhr = (shared_data / "parallel" / "udhr_multiway.jsonl").read_text(encoding="utf-8").splitlines()
    udhr_tg = " ".join(json.loads(line)["tg"] for line in udhr)
    fallback_text = udhr_tg.translate(RUSSIAN_KEYBOARD_FALLBACK)
    near = web_texts["web-001"].replace("Тоҷикистон", "Тоҷикистони азиз", 2) + "\n\nИн матн бори дигар нашр шуд."
    planted = {
        "exact-copy": web_texts["web-000"],
        "near-copy": near,
        "with-pii": "\n\n".join(address_2019[60:66])
        + f"\n\nБарои маълумот ба телефони {PHONE} ё {LOCAL_PHONE} занг занед ё ба почтаи {EMAIL} нависед. "
        f"Суроғаи сервер {IP} аст. Шиносномаи № {PASSPORT} гум шудааст.",
        "contaminated": "\n\n".join(address_2019[50:56]) + "\n\n" + eval_passage,
        "keyboard-fallback": fallback_text,
        **{
            f"udhr-{lang}": (langid / f"udhr_{lang}.txt").read_text(encoding="utf-8")
            for lang in ("ru", "uz_Cyrl", "uz_Latn", "fa", "en")
        },
    }
    records = [{"text": text, "id": key, "url": f"https://example.tj/{key}"} for key, text in web_texts.items()]
    records += [{"text": text, "id": key, "url": f"https://example.tj/{key}"} for key, text in planted.items()]
    _write_jsonl(root / "web" / "part-00.jsonl", records[: len(records) // 2])
    _write_jsonl(root / "web" / "part-01.jsonl", records[len(records) // 2 :])

    fineweb = _documents(prose / "Payom_MajlisiOli_22_12_2017.txt", per_doc=6, count=12)
    _write_fineweb2_parquet(
        root / "fineweb2" / "tgk_Cyrl" / "train" / "000_00000.parquet", [*fineweb, web_texts["web-002"]]
    )

    article = _paragraphs(prose / "Payom_MajlisiOli_22_12_2016.txt")[10:16]
    russian = [line for line in (langid / "udhr_ru.txt").read_text(encoding="utf-8").splitlines() if len(line) > 80]
    _write_warc(
        root / "warc" / "crawl-00000.warc.gz",
        [
            ("https://khovar.tj/payom-2016", _html("Паёми Президент", article)),
            ("https://ria.ru/udhr", _html("Декларация", russian)),
        ],
    )

    curriculum = root / "curriculum"
    (curriculum / "math" / "5").mkdir(parents=True)
    (curriculum / "literature" / "7").mkdir(parents=True)
    (curriculum / "math" / "5" / "fractions.txt").write_text(LESSON_FRACTIONS, encoding="utf-8")
    (curriculum / "literature" / "7" / "rudaki.md").write_text(LESSON_RUDAKI, encoding="utf-8")
    _write_jsonl(
        curriculum / "metadata.jsonl",
        [
            {"file": "math/5/fractions.txt", "subject": "математика", "grade": 5, "title": "Касрҳои одӣ"},
            {"file": "literature/7/rudaki.md", "subject": "адабиёт", "grade": 7, "title": "Рӯдакӣ"},
        ],
    )

    question = "Дар паёми соли 2019 кадом вазифа гузошта шуд?"
    _write_jsonl(root / "eval" / "payom_qa.jsonl", [{"id": "q1", "passage": eval_passage, "question": question}])

    config_text = yaml.safe_dump(
        {
            "output_dir": "OUTPUT_DIR",
            "sources": [
                {"name": "web", "kind": "jsonl", "path": str(root / "web")},
                {"name": "fineweb2", "kind": "fineweb2", "path": str(root / "fineweb2")},
                {"name": "crawl", "kind": "warc", "path": str(root / "warc")},
                {
                    "name": "pdfs",
                    "kind": "pdf",
                    "path": str(shared_data / "pdf"),
                    "glob": "*_legacy_font.pdf",
                    "skip_steps": ["quality"],
                },
                {"name": "school", "kind": "curriculum", "path": str(curriculum)},
            ],
            "decontamination": {
                "eval_sets": [
                    {
                        "name": "payom_qa",
                        "path": str(root / "eval" / "payom_qa.jsonl"),
                        "fields": ["passage", "question"],
                    }
                ]
            },
            "executor": {"tasks": 2, "workers": 1},
        },
        allow_unicode=True,
        sort_keys=False,
    )
    return RawCorpus(
        root=root,
        config_text=config_text,
        web_texts=web_texts,
        exact_copy_of="web-000",
        near_copy_of="web-001",
        cross_source_copy_of="web-002",
        eval_passage=eval_passage,
        fallback_text=fallback_text,
    )


@pytest.fixture(scope="session")
def built_corpus(raw_corpus: RawCorpus, tmp_path_factory: pytest.TempPathFactory) -> BuildResult:
    output_dir = tmp_path_factory.mktemp("built") / "corpus"
    return build_corpus(load_curation_config(raw_corpus.config(output_dir)))


def read_shards(folder: Path) -> list[dict[str, Any]]:
    import pyarrow.parquet as pq

    rows: list[dict[str, Any]] = []
    for path in sorted(folder.rglob("*")):
        if path.suffix == ".parquet":
            rows += pq.read_table(path).to_pylist()
        elif path.name.endswith(".jsonl.gz"):
            with gzip.open(path, "rt", encoding="utf-8") as stream:
                rows += [json.loads(line) for line in stream]
    return rows


@pytest.fixture(scope="session")
def shard_rows(built_corpus: BuildResult) -> list[dict[str, Any]]:
    return read_shards(built_corpus.layout.shards)


def removed_documents(built: BuildResult, step: str) -> Iterator[dict[str, Any]]:
    for path in sorted((built.layout.removed / step).rglob("*.jsonl.gz")):
        with gzip.open(path, "rt", encoding="utf-8") as stream:
            yield from (json.loads(line) for line in stream)
