"""Issue 25, classes 1-2 and the network half of 3 (docs/reliability.md lists each promise with its test):
nothing the user made is destroyed by a writing command, bad arguments are refused before any work, and a Hub
that never answers ends in one line naming the endpoint."""

from __future__ import annotations

import json
import os
import runpy
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
import yaml
from phases import tiny_phase

from rexbert.cli import main as cli
from rexbert.core.outputs import MANIFEST, OutputExistsError, claim_output, mark_output, replace_folder

ROOT = Path(__file__).resolve().parents[2]
DATA = Path(__file__).parents[1] / "data"
USER_FILE = "my-notes.txt"


def _users_folder(path: Path) -> Path:
    path.mkdir(parents=True, exist_ok=True)
    (path / USER_FILE).write_text("the user's own work\n")
    return path


def _model_folder(path: Path) -> Path:
    """A folder that passes as a saved model for the commands that check no further before refusing."""
    path.mkdir(parents=True, exist_ok=True)
    (path / "config.json").write_text(json.dumps({"model_type": "modernbert", "num_hidden_layers": 2,
                                                 "hidden_size": 64, "max_position_embeddings": 512}))
    return path


# --- 1. never destroy what the user did not create ---------------------------------------------------------

def _quickstart(tmp_path: Path) -> tuple[list[str], Path]:
    return ["python", "examples/quickstart.py", "--output-dir", str(tmp_path / "out")], tmp_path / "out"


# each: (how to build the command's arguments from tmp_path, the folder or file of the user's that it must leave)
WRITING_COMMANDS = {
    "quickstart --output-dir": lambda t: (["QUICKSTART", "--output-dir", str(_users_folder(t / "out"))], t / "out"),
    "convert DESTINATION": lambda t: (["convert", "--to", "rexbert", str(_model_folder(t / "m")),
                                       str(_users_folder(t / "out"))], t / "out"),
    "eval cosent --save-model": lambda t: (["eval", "cosent", "--model", str(_model_folder(t / "m")), "--train-file",
                                            str(DATA / "esci_sample" / "test-sample.parquet"), "--save-model",
                                            str(_users_folder(t / "out"))], t / "out"),
    "eval mlm --output": lambda t: (["eval", "mlm", "--model", "m", "--dataset", "d", "--output",
                                     str(_users_folder(t) / USER_FILE)], t),
    "mine-spans --output": lambda t: (["mine-spans", "--source", str(ROOT / "rexbert" / "corpus" / "general.jsonl"),
                                       "--output", str(_users_folder(t) / USER_FILE)], t),
    "train --output-dir": lambda t: (["train", "--config", str(tiny_phase(t)), "--output-dir", str(t / "run")],
                                     _users_folder(t / "run" / "phase1")),
    "curate sample (output_dir)": lambda t: (["curate", "sample", "--no-progress", "--config", str(_curation_yaml(
        t, _users_folder(t / "out")))], t / "out"),
    "curate demo-data --out": lambda t: (["curate", "demo-data", "--out", str(_users_folder(t / "out"))], t / "out"),
    "card render (README.md)": lambda t: (["card", "render", "--model", str(_hand_written_card(t / "m"))], t / "m"),
}


def _curation_yaml(tmp_path: Path, output_dir: Path) -> Path:
    path = tmp_path / "curation.yaml"
    path.write_text(yaml.safe_dump({"output_dir": str(output_dir), "domains": ["photo"],
                                    "sample": {"source": str(tmp_path / "no-source-needed")}}))
    return path


def _hand_written_card(folder: Path) -> Path:
    _model_folder(folder)
    (folder / "README.md").write_text("# My model\n\nA card I wrote by hand.\n")
    (folder / USER_FILE).write_text("the user's own work\n")
    return folder


def _snapshot(path: Path) -> dict[str, bytes]:
    files = [path] if path.is_file() else sorted(p for p in path.rglob("*") if p.is_file())
    return {str(p): p.read_bytes() for p in files if p.name != MANIFEST}


@pytest.mark.parametrize("command", sorted(WRITING_COMMANDS))
def test_a_users_files_survive_every_writing_command(command, tmp_path, capsys, monkeypatch):
    argv, kept = WRITING_COMMANDS[command](tmp_path)
    before = _snapshot(kept)
    assert before, "the test must give the command something of the user's"
    if argv[0] == "QUICKSTART":
        monkeypatch.setattr(sys, "argv", ["quickstart.py", *argv[1:]])
        with pytest.raises(SystemExit) as exit_:
            runpy.run_path(str(ROOT / "examples" / "quickstart.py"), run_name="__main__")
        code = exit_.value.code
    else:
        code = cli(argv)
    err = capsys.readouterr().err
    assert code == 2, err
    assert _snapshot(kept) == before  # every byte of the user's files is still there
    assert "--overwrite" in err and "Traceback" not in err


def test_card_render_replaces_its_own_card_until_someone_edits_it(tmp_path, capsys):
    model = _model_folder(tmp_path / "m")
    assert cli(["card", "render", "--model", str(model)]) == 0
    assert cli(["card", "render", "--model", str(model), "--name", "again"]) == 0  # ours, unchanged: replaced
    assert "# again" in (model / "README.md").read_text()
    (model / "README.md").write_text((model / "README.md").read_text() + "\nMy own paragraph.\n")
    assert cli(["card", "render", "--model", str(model)]) == 2
    assert "README.md exists" in capsys.readouterr().err
    assert "My own paragraph." in (model / "README.md").read_text()
    assert cli(["card", "render", "--model", str(model), "--overwrite"]) == 0  # said so: replaced
    assert "My own paragraph." not in (model / "README.md").read_text()


def test_a_marked_folder_may_be_replaced_and_overwrite_replaces_any(tmp_path):
    ours = mark_output(tmp_path / "ours", "a test")
    (ours / "model.safetensors").write_bytes(b"old")
    assert not replace_folder(ours).exists()  # this project's: replaced without --overwrite
    finished = mark_output(_users_folder(tmp_path / "finished"), "a test", entries=True)  # a finished output
    (finished / "added-later.txt").write_text("the user's, added to a folder rexbert wrote\n")
    with pytest.raises(OutputExistsError, match="written by rexbert but now also holds added-later.txt"):
        replace_folder(finished)
    assert (finished / "added-later.txt").exists() and (finished / USER_FILE).exists()
    theirs = _users_folder(tmp_path / "theirs")
    with pytest.raises(OutputExistsError, match=f"did not write \\({USER_FILE}\\)"):
        claim_output(theirs)
    assert (theirs / USER_FILE).exists()
    assert not replace_folder(theirs, overwrite=True).exists()
    assert claim_output(tmp_path / "new") == tmp_path / "new"  # absent and empty folders are always fine
    (tmp_path / "empty").mkdir()
    assert claim_output(tmp_path / "empty") == tmp_path / "empty"


# --- 2. nothing hangs: every argument checked before any work ----------------------------------------------

BAD_ARGUMENTS = [
    ["eval", "mlm", "--mask-rate", "2"], ["eval", "mlm", "--mask-rate", "0"], ["eval", "mlm", "--mask-rate", "nan"],
    ["eval", "mlm", "--mask-rate", "-0.1"], ["eval", "mlm", "--block-sizes", "128,0"],
    ["eval", "mlm", "--block-sizes", "-5"], ["eval", "mlm", "--k", "0"], ["eval", "mlm", "--k", "1,,-3"],
    ["eval", "mlm", "--batch-size", "0"], ["eval", "mlm", "--max-texts", "-1"],
    ["eval", "glue", "--task", "sst2", "--epochs", "0"], ["eval", "glue", "--task", "sst2", "--learning-rate", "-1"],
    ["eval", "glue", "--task", "sst2", "--batch-size", "0"], ["eval", "glue", "--task", "sst2", "--max-length", "0"],
    ["eval", "cosent", "--epochs", "inf"], ["eval", "cosent", "--max-length", "-512"],
    ["mine-spans", "--min-count", "0"], ["train", "--max-steps", "0"], ["train", "--stop-after", "-2"],
]
REQUIRED = {"mlm": ["--model", "m", "--dataset", "d"], "glue": ["--model", "m"], "cosent": ["--model", "m"],
            "mine-spans": ["--source", "s", "--output", "o"], "train": ["--config", "c"]}


@pytest.mark.parametrize("argv", BAD_ARGUMENTS, ids=" ".join)
def test_an_invalid_rate_size_or_count_is_refused_at_once(argv, capsys):
    required = REQUIRED[argv[1] if argv[0] == "eval" else argv[0]]
    started = time.perf_counter()
    with pytest.raises(SystemExit) as exit_:
        cli([*argv, *required])
    assert time.perf_counter() - started < 2
    err = capsys.readouterr().err
    assert exit_.value.code == 2 and f"argument {argv[-2]}: expected" in err, err


def test_python_callers_get_the_same_checks_before_any_data_is_read():
    from evaluation.mlm import choose_masked_words, evaluate_masked_lm

    raised: list[BaseException] = []

    def mask():
        try:
            choose_masked_words("red running shoes", 2.0, 0, (0, 0))  # used to loop for ever
        except BaseException as error:
            raised.append(error)

    worker = threading.Thread(target=mask, daemon=True)
    worker.start()
    worker.join(timeout=5)
    assert not worker.is_alive(), "rate 2 never finishes"
    assert isinstance(raised[0], ValueError) and "rate must be a share in (0, 1], got 2" in str(raised[0])
    for kwargs, message in (({"rate": 1.5}, "share"), ({"block_sizes": [2]}, "at least 3"), ({"ks": [0]}, "positive"),
                            ({"batch_size": 0}, "positive")):
        arguments = {"block_sizes": [128], **kwargs}
        with pytest.raises(ValueError, match=message):
            evaluate_masked_lm(["no-model-read"], "no-data-read", ["text"], **arguments)


# --- 2/3. a Hub that accepts the connection and never answers ----------------------------------------------

@pytest.fixture
def silent_endpoint():
    """http://127.0.0.1:PORT that accepts connections and never answers."""
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(16)
    held: list[socket.socket] = []
    stop = threading.Event()

    def accept():
        server.settimeout(0.2)
        while not stop.is_set():
            try:
                held.append(server.accept()[0])
            except OSError:
                continue

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.getsockname()[1]}"
    stop.set()
    thread.join()
    for connection in held:
        connection.close()
    server.close()


def test_card_push_to_a_hub_that_never_answers_ends_in_one_line(tmp_path, silent_endpoint):
    model = _model_folder(tmp_path / "m")
    (model / "README.md").write_text("# m\n")
    env = {**os.environ, "HF_ENDPOINT": silent_endpoint, "HF_HUB_OFFLINE": "0", "HF_TOKEN": "hf_not_a_real_token",
           "HF_HUB_DOWNLOAD_TIMEOUT": "2", "HF_HUB_DISABLE_TELEMETRY": "1"}
    started = time.perf_counter()
    done = subprocess.run([sys.executable, "-m", "rexbert.cli", "card", "push", "--model", str(model), "--repo-id",
                           "me/x"], env=env, capture_output=True, text=True, timeout=90)
    elapsed = time.perf_counter() - started
    lines = [line for line in done.stderr.splitlines() if line.strip()]
    assert done.returncode == 2, done.stderr
    assert len(lines) == 1 and "Traceback" not in done.stderr, done.stderr
    assert silent_endpoint in lines[0] and "did not answer within 2 s" in lines[0]
    assert "HF_ENDPOINT" in lines[0] and "HF_TOKEN" in lines[0] and "HF_HUB_OFFLINE" in lines[0]
    assert elapsed < 45  # interpreter start and imports, then the 2 s wait (a retry at most), not for ever


@pytest.mark.parametrize("command", [["eval", "mlm", "--model", "someone/rexbert-x", "--dataset", "DATA"],
                                     ["eval", "mlm", "--model", "MODEL", "--dataset", "someone/esci-x"]])
def test_loading_a_hub_id_from_a_hub_that_never_answers_ends_in_one_line(tmp_path, silent_endpoint, command):
    """A model or dataset given by Hub id: one probe with the timeout, not the downloads' retries per file."""
    data = tmp_path / "products.jsonl"
    data.write_text(json.dumps({"title": "Navy blue running shoes"}) + "\n")
    model = _model_folder(tmp_path / "m")
    command = [{"DATA": str(data), "MODEL": str(model)}.get(part, part) for part in command]
    env = {**os.environ, "HF_ENDPOINT": silent_endpoint, "HF_HUB_OFFLINE": "0", "HF_HUB_DOWNLOAD_TIMEOUT": "2",
           "HF_HUB_DISABLE_TELEMETRY": "1", "HF_HOME": str(tmp_path / "hf-home")}
    started = time.perf_counter()
    done = subprocess.run([sys.executable, "-m", "rexbert.cli", *command, "--text-columns", "title", "--output",
                           str(tmp_path / "out.json")], env=env, capture_output=True, text=True, timeout=120)
    elapsed = time.perf_counter() - started
    lines = [line for line in done.stderr.splitlines() if "error" in line]  # datasets' progress bars aside
    assert done.returncode == 2 and "Traceback" not in done.stderr, done.stderr
    assert len(lines) == 1 and silent_endpoint in lines[0] and "did not answer within 2 s" in lines[0], done.stderr
    assert "someone/" in lines[0]  # names the id it was loading
    assert elapsed < 60
