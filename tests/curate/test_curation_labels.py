"""The labelling client against a local OpenAI-compatible server on loopback: good answers, garbage,
500s, timeouts, refusals; strict parsing; the cache makes a rerun free."""

from __future__ import annotations

import json
import threading
import time
from collections import Counter
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from curation.labels import ChatClient, LabelCache, LLMLabeler, RuleLabeler, get_prompt, parse_answer
from curation.labels.client import LabelServerError

TEXTS = ["Canon G3 camera, 4x zoom, price $499 with free shipping.",
         "Four score and seven years ago our fathers brought forth a new nation.",
         "USB-C charger, 65 W, compatible with laptops and phones. Price: $29.",
         "The committee adjourned until Tuesday after a long debate on the budget."]
TRUTH = [1, 0, 1, 0]


class Handler(BaseHTTPRequestHandler):
    def log_message(self, *args):  # keep pytest output clean
        pass

    def do_POST(self):
        server = self.server
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        text = body["messages"][-1]["content"]
        with server.lock:
            server.requests += 1
            server.authorization = self.headers.get("Authorization")
            server.attempts[text] += 1
            attempt = server.attempts[text]
        status, payload = server.behaviour(text, attempt, body)
        if status == "trickle":  # headers at once, then the body one byte every `payload` seconds
            data = json.dumps(_answer(text)).encode()
            self.send_response(200)
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            for byte in data:
                self.wfile.write(bytes([byte]))
                self.wfile.flush()
                time.sleep(payload)
            return
        if status == "sleep":
            time.sleep(payload)
            status, payload = 200, _answer(text)
        data = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)


def _answer(text: str, content: str | None = None) -> dict:
    if content is None:
        content = "RELEVANT" if ("price" in text.lower()) else "NOT_RELEVANT"
    return {"id": "x", "object": "chat.completion", "choices": [{"index": 0, "message": {"role": "assistant",
                                                                                       "content": content}}]}


@pytest.fixture
def serve():
    servers = []

    def start(behaviour):
        server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        server.behaviour, server.lock, server.requests, server.attempts = behaviour, threading.Lock(), 0, Counter()
        threading.Thread(target=server.serve_forever, daemon=True).start()
        servers.append(server)
        return server, f"http://127.0.0.1:{server.server_address[1]}/v1"

    yield start
    for server in servers:
        server.shutdown()
        server.server_close()


def _labeler(url, tmp_path=None, timeout_s=5.0, max_retries=3, model="phi-4"):
    cache = LabelCache(str(tmp_path / "cache.sqlite")) if tmp_path is not None else None
    return LLMLabeler(ChatClient(url, model, timeout_s=timeout_s), get_prompt("v2"), cache=cache, workers=4,
                      max_retries=max_retries, backoff_s=0.01)


def test_parse_answer_is_strict():
    assert parse_answer("RELEVANT") == 1 and parse_answer(" not_relevant.\n") == 0
    assert parse_answer("**Relevant**") == 1 and parse_answer("Not Relevant") == 0
    for reply in ["Relevant, because it sells shoes", "Yes", "", None, "RELEVANT NOT_RELEVANT", "maybe"]:
        assert parse_answer(reply) is None


def test_good_server_labels_everything_and_sends_the_versioned_prompt(serve, tmp_path):
    seen = []

    def behaviour(text, attempt, body):
        seen.append(body)
        return 200, _answer(text)

    server, url = serve(behaviour)
    labels, stats = _labeler(url, tmp_path).label(TEXTS, ["photo", "news", "hobby", "news"])
    assert labels == TRUTH
    assert stats.as_dict() | {} == {"requested": 4, "cached": 0, "labelled": 4, "unparseable": 0, "errors": 0,
                                    "failed": 0}
    assert all(b["model"] == "phi-4" and b["temperature"] == 0.0 for b in seen)
    assert "COMMERCE-RELEVANT" in seen[0]["messages"][0]["content"]


def test_cache_resumes_without_paying_twice(serve, tmp_path):
    server, url = serve(lambda text, attempt, body: (200, _answer(text)))
    _labeler(url, tmp_path).label(TEXTS[:2], ["photo", "news"])
    assert server.requests == 2
    # "crash" after two labels; the rerun over all four only asks for the two new ones
    labels, stats = _labeler(url, tmp_path).label(TEXTS, ["photo", "news", "hobby", "news"])
    assert labels == TRUTH and server.requests == 4
    assert stats.cached == 2 and stats.labelled == 2
    # another model or prompt version is another key
    _labeler(url, tmp_path, model="llama-70b").label(TEXTS[:1], ["photo"])
    assert server.requests == 5
    assert len(LabelCache(str(tmp_path / "cache.sqlite"))) == 5


def test_garbage_bodies_and_unparseable_answers_are_counted_and_retried(serve):
    def behaviour(text, attempt, body):
        if attempt == 1:
            return 200, b"<html>upstream hiccup</html>"
        if attempt == 2:
            return 200, _answer(text, "Relevant, I think, since it mentions a product")
        return 200, _answer(text)

    server, url = serve(behaviour)
    labels, stats = _labeler(url).label(TEXTS, ["photo"] * 4)
    assert labels == TRUTH
    assert stats.errors == 4 and stats.unparseable == 4 and stats.failed == 0
    assert server.requests == 12


def test_500s_are_retried_with_backoff_then_succeed(serve):
    server, url = serve(lambda text, attempt, body: (500, {"error": "overloaded"}) if attempt <= 2
                        else (200, _answer(text)))
    labels, stats = _labeler(url, max_retries=3).label(TEXTS, ["photo"] * 4)
    assert labels == TRUTH and stats.errors == 8 and server.requests == 12


def test_timeouts_exhaust_retries_and_the_item_is_reported_failed(serve):
    server, url = serve(lambda text, attempt, body: ("sleep", 1.0))
    start = time.perf_counter()
    labels, stats = _labeler(url, timeout_s=0.2, max_retries=1).label(TEXTS[:2], ["photo", "news"])
    assert labels == [None, None]
    assert stats.failed == 2 and stats.errors == 4
    assert time.perf_counter() - start < 5


def test_always_unparseable_fails_after_max_retries(serve):
    server, url = serve(lambda text, attempt, body: (200, _answer(text, "Sure!")))
    labels, stats = _labeler(url, max_retries=2).label(TEXTS[:1], ["photo"])
    assert labels == [None] and stats.unparseable == 3 and stats.failed == 1


def test_a_refusal_is_not_retried_and_its_body_is_never_quoted(serve):
    # some servers echo the request, Authorization header included, in their error page
    server, url = serve(lambda text, attempt, body: (401, {"error": "bad key Bearer sk-secret-123"}))
    with pytest.raises(LabelServerError, match="401") as error:
        _labeler(url).label(TEXTS[:1], ["photo"])
    assert "sk-secret" not in str(error.value) and "bad key" not in str(error.value)
    assert server.requests == 1


def test_timeout_bounds_the_whole_request_not_each_read(serve):
    server, url = serve(lambda text, attempt, body: ("trickle", 0.05))  # ~170 bytes: ~8.5 s in all
    start = time.perf_counter()
    labels, stats = _labeler(url, timeout_s=0.5, max_retries=0).label(TEXTS[:1], ["photo"])
    assert labels == [None] and stats.failed == 1 and stats.errors == 1
    assert time.perf_counter() - start < 2.0  # each read took 0.05 s, well under timeout_s


def _curation_config(tmp_path, url, **audit):
    """local.yaml's label/audit sections (backend openai), pointed at the loopback server."""
    import yaml

    from curation.config import config_from_dict

    data = yaml.safe_load(open("curation/configs/local.yaml"))
    data["output_dir"] = str(tmp_path / "out")
    data["domains"] = ["photo"]
    data["label"].update(base_url=url, backoff_s=0.01, workers=2)
    data["audit"].update(base_url=url, backoff_s=0.01, workers=2, api_key_env="REXBERT_TEST_AUDIT_KEY",
                         timeout_s=5, sample_size=4, **audit)
    return config_from_dict(data)


def _write_labels(cfg, labels):
    import os

    os.makedirs(os.path.join(cfg.output_dir, "labels"))
    with open(os.path.join(cfg.output_dir, "labels", "labels.jsonl"), "w") as f:
        for i, (text, label) in enumerate(zip(TEXTS, labels)):
            f.write(json.dumps({"id": str(i), "domain": "photo", "text": text, "label": label,
                                "labeler": "phi-4", "prompt_version": "v2"}) + "\n")


def test_openai_auditor_runs_from_the_shipped_config_and_sends_its_key(serve, tmp_path, monkeypatch):
    from curation.stages import stage_audit

    seen = []

    def behaviour(text, attempt, body):
        seen.append(body["model"])
        return 200, _answer(text)

    server, url = serve(behaviour)
    monkeypatch.setenv("REXBERT_TEST_AUDIT_KEY", "sk-audit")
    cfg = _curation_config(tmp_path, url)
    _write_labels(cfg, TRUTH)
    summary = stage_audit(cfg, progress=False)
    assert summary["n"] == 4 and summary["kappa"] == 1.0 and summary["stable"]
    assert set(seen) == {"meta-llama/Meta-Llama-3-70B-Instruct"} and server.authorization == "Bearer sk-audit"


def test_an_auditor_that_fails_too_often_fails_the_stage_with_the_count(serve, tmp_path, capsys):
    from curation.labels.run import TooManyFailures
    from curation.stages import stage_audit

    server, url = serve(lambda text, attempt, body: (503, {"error": "down"}))
    cfg = _curation_config(tmp_path, url, max_retries=0, max_failure_rate=0.25)
    _write_labels(cfg, TRUTH)
    with pytest.raises(TooManyFailures, match="audit: 4 of 4 items got no label"):
        stage_audit(cfg, progress=False)


def test_labelling_that_fails_every_item_exits_non_zero(serve, tmp_path, capsys):
    import os

    import yaml

    from rexbert.cli import main as cli
    from rexbert.core.outputs import mark_output

    server, url = serve(lambda text, attempt, body: (503, {"error": "down"}))
    samples = tmp_path / "out" / "samples"
    samples.mkdir(parents=True)
    samples.joinpath("photo.jsonl").write_text(
        "".join(json.dumps({"id": str(i), "domain": "photo", "text": t}) + "\n" for i, t in enumerate(TEXTS)))
    mark_output(tmp_path / "out", "rexbert curate")  # as the sample stage that wrote samples/ leaves it
    config = {"output_dir": str(tmp_path / "out"), "domains": ["photo"],
              "label": {"base_url": url, "max_retries": 0, "backoff_s": 0.01}}
    (tmp_path / "c.yaml").write_text(yaml.safe_dump(config))
    assert cli(["curate", "label", "--config", str(tmp_path / "c.yaml"), "--no-progress"]) == 2
    assert "label: 4 of 4 items got no label" in capsys.readouterr().err
    assert os.path.getsize(tmp_path / "out" / "labels" / "failed.jsonl") > 0  # the evidence is kept


def test_rule_labeler_is_a_demo_stand_in_that_separates_obvious_cases():
    labels, stats = RuleLabeler().label(TEXTS, ["photo"] * 4)
    assert labels == TRUTH and stats.labelled == 4
    assert RuleLabeler.name == "rules"
