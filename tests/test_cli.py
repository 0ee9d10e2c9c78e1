"""The ganserve command line: the full train -> export -> evaluate path and usage errors."""

import importlib.util
import json
import shutil
from pathlib import Path

import pytest

from ganserve.cli.main import main
from ganserve.manifest import load_manifest, verify_files

REPO = Path(__file__).resolve().parents[1]


def test_cli_train_export_evaluate_baby(tmp_path, idx_dir, extractor_dir, capsys):
    run, store = tmp_path / "runs" / "sg", tmp_path / "models"
    assert main(["train", "stylegan", "--preset", "baby", "--data", str(idx_dir),
                 "--out", str(run), "--steps", "3", "--no-progress"]) == 0
    assert "trained stylegan to step 3" in capsys.readouterr().out
    # extend the run by resuming with more steps
    assert main(["train", "stylegan", "--out", str(run), "--resume", "--steps", "5",
                 "--no-progress"]) == 0
    assert main(["export", str(run), "--name", "sg", "--to", str(store)]) == 0
    out = capsys.readouterr().out
    assert "version 1" in out and "parity" in out
    m = load_manifest(store / "sg" / "1")
    assert m.training.steps == 5 and m.training.command.startswith("ganserve train stylegan")
    assert m.training.resumes == [f"ganserve train stylegan --out {run} --resume --steps 5 "
                                  "--no-progress"]
    # one host record per session (the first run and the resume), so images/s can be compared
    assert len(m.training.hosts) == 2
    assert all(h["cpus"] >= 1 and h["cpu"] and h["torch"] for h in m.training.hosts)
    manifest_bytes = (store / "sg" / "1" / "manifest.json").read_bytes()
    assert main(["evaluate", str(store / "sg"), "--n", "40", "--extractor", str(extractor_dir),
                 "--data", str(idx_dir), "--json"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["n"] == 40 and "fid" in result and result["seed"] == 0
    # stored beside the version, never into it
    assert (store / "sg" / "1" / "manifest.json").read_bytes() == manifest_bytes
    assert Path(result["record"]).parent == store / "sg" / "_evaluations" / "1"
    assert json.loads(Path(result["record"]).read_text())["metrics"]["fid"] == result["fid"]


@pytest.mark.parametrize("argv", [
    ["train", "vae", "--out", "x"],                       # unknown family
    ["train", "dcgan"],                                   # --out missing
    ["train", "dcgan", "--out", "x", "--steps", "0"],     # not positive
    ["evaluate"],                                         # model missing
    ["evaluate", "m", "--data", "d", "--no-data"],        # --data and --no-data
    [],                                                   # no command
])
def test_cli_usage_errors_exit_2(argv, capsys):
    with pytest.raises(SystemExit) as e:
        main(argv)
    assert e.value.code == 2
    assert "usage:" in capsys.readouterr().err


@pytest.mark.parametrize("argv, usage, says", [
    (["generate", "x", "--sedes", "1"], "usage: ganserve generate",
     "unrecognized arguments: --sedes 1 (--sedes: did you mean --seeds?)"),
    (["generate", "--modle", "x"], "usage: ganserve generate",
     "(--modle: MODEL is given without a flag: ganserve generate MODEL ...)"),
    (["train", "dcgan", "--out", "x", "--stesp", "3"], "usage: ganserve train",
     "did you mean --steps?"),
    (["--bogus", "generate", "x"], "usage: ganserve [-h]", "unrecognized arguments: --bogus"),
    (["--log", "DEBUG", "genrate", "x"], "usage: ganserve [-h]",
     "unknown command 'genrate'; did you mean 'generate'?"),     # --log: --log-level's value
])
def test_cli_unknown_flag_is_the_commands_error(argv, usage, says, capsys):
    """An unknown flag after a command: that command's usage and the flag it meant (argparse
    alone reports it from the top-level parser, with the top-level usage)."""
    with pytest.raises(SystemExit) as e:
        main(argv)
    err = capsys.readouterr().err
    assert e.value.code == 2 and err.startswith(usage) and says in err, err


def test_cli_unknown_model_names_the_store_and_the_near_miss(tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("GANSERVE_MODELS_DIR", str(REPO / "models"))
    assert main(["evaluate", "fashion-dcgn", "--no-data", "--no-write"]) == 1
    err = capsys.readouterr().err
    assert "no model named 'fashion-dcgn'; did you mean 'fashion-dcgan'? models: " \
           "fashion-cgan, fashion-dcgan, fashion-stylegan" in err, err


def test_cli_missing_data_is_one_clear_line(tmp_path, capsys):
    code = main(["train", "dcgan", "--preset", "baby", "--data", str(tmp_path / "nowhere"),
                 "--out", str(tmp_path / "r"), "--no-progress"])
    err = capsys.readouterr().err
    assert code == 1
    assert "error:" in err and "nowhere" in err and "dataset-fashion-mnist" in err
    assert "Traceback" not in err


def test_cli_unknown_preset_and_resume_changes(tmp_path, idx_dir, capsys):
    assert main(["train", "dcgan", "--preset", "huge", "--data", str(idx_dir),
                 "--out", str(tmp_path / "r")]) == 1
    assert "unknown preset 'huge'" in capsys.readouterr().err
    run = tmp_path / "r2"
    assert main(["train", "dcgan", "--preset", "baby", "--data", str(idx_dir), "--out",
                 str(run), "--no-progress"]) == 0
    assert main(["train", "dcgan", "--out", str(run), "--resume", "--lr", "0.1"]) == 1
    assert "cannot change --lr when resuming" in capsys.readouterr().err
    assert main(["train", "dcgan", "--out", str(run), "--resume", "--precision", "bf16"]) == 1
    assert "cannot change --precision when resuming" in capsys.readouterr().err
    # a time budget the run has already used up: it ends at once, as finished
    assert main(["train", "dcgan", "--out", str(run), "--resume", "--steps", "50",
                 "--time-budget", "0.000001"]) == 0
    assert "time budget of 1e-06 min reached at step 4/50" in capsys.readouterr().out
    assert main(["train", "cgan", "--out", str(run), "--resume"]) == 1
    assert "is a dcgan run" in capsys.readouterr().err


def test_cli_export_and_evaluate_errors(tmp_path, capsys):
    assert main(["export", str(tmp_path), "--name", "x", "--to", str(tmp_path / "m")]) == 1
    assert "not a training run" in capsys.readouterr().err
    assert main(["evaluate", str(tmp_path)]) == 1
    assert "not a model version folder" in capsys.readouterr().err


def test_cli_evaluate_missing_data_exits_1_before_sampling(baby_exports, extractor_dir,
                                                           tmp_path, capsys, monkeypatch):
    import ganserve.evaluation.evaluate as ev

    def no_sampling(*a, **k):
        raise AssertionError("sampled before checking the data")

    monkeypatch.setattr(ev, "sample_features", no_sampling)
    monkeypatch.setattr(ev, "OnnxGenerator", no_sampling)
    vdir = tmp_path / "models" / "baby-cgan" / "1"
    shutil.copytree(baby_exports["cgan"], vdir)
    before = (vdir / "manifest.json").read_bytes()
    missing = tmp_path / "nonexistent"
    assert main(["evaluate", str(vdir), "--n", "500", "--extractor", str(extractor_dir),
                 "--data", str(missing)]) == 1
    err = capsys.readouterr().err
    assert err.startswith("ganserve evaluate: error: ") and err.count("\n") == 1
    assert str(missing) in err and "--no-data" in err and "Traceback" not in err
    assert (vdir / "manifest.json").read_bytes() == before
    assert sorted(p.name for p in vdir.parent.iterdir()) == ["1"]     # no record folder


def test_cli_evaluate_no_data_table_says_what_it_left_out(baby_exports, extractor_dir,
                                                          tmp_path, capsys):
    vdir = tmp_path / "models" / "baby-dcgan" / "1"
    shutil.copytree(baby_exports["dcgan"], vdir)
    assert main(["evaluate", str(vdir), "--n", "20", "--extractor", str(extractor_dir),
                 "--no-data", "--quick"]) == 0
    out = capsys.readouterr().out
    assert "FID (tiny, n=20)" in out and "KID" not in out
    assert "not computed (no real images (--no-data)): kid, precision, recall" in out
    assert "not computed (--quick): memorization" in out
    (record,) = (vdir.parent / "_evaluations" / "1").iterdir()
    assert f"stored as {record}" in out
    assert json.loads(record.read_text())["data_free"] is True


def test_cli_evaluate_rejects_bad_psi_as_a_usage_error(baby_exports, capsys):
    with pytest.raises(SystemExit) as e:
        main(["evaluate", str(baby_exports["dcgan"]), "--psi", "3"])
    assert e.value.code == 2 and "psi must be in [0, 2]" in capsys.readouterr().err


def test_cli_cgan_on_unlabeled_data(tmp_path, capsys):
    import numpy as np
    np.savez(tmp_path / "x.npz", x=np.zeros((8, 32, 32), np.uint8))
    assert main(["train", "cgan", "--preset", "baby", "--data", str(tmp_path / "x.npz"),
                 "--out", str(tmp_path / "r"), "--no-progress"]) == 1
    assert "cgan needs labeled data" in capsys.readouterr().err


def test_cli_aux_class_weight(tmp_path, idx_dir, capsys):
    run = tmp_path / "cg"
    assert main(["train", "cgan", "--preset", "baby", "--data", str(idx_dir), "--out", str(run),
                 "--steps", "2", "--aux-class-weight", "1.0", "--no-progress"]) == 0
    assert '"aux_G"' in (run / "metrics.jsonl").read_text()
    assert main(["train", "dcgan", "--preset", "baby", "--data", str(idx_dir), "--out",
                 str(tmp_path / "d"), "--aux-class-weight", "1.0"]) == 1
    assert "conditional families only (cgan)" in capsys.readouterr().err


def test_cli_model_arg_overrides_preset_and_is_checked(tmp_path, idx_dir, capsys):
    run = tmp_path / "sg"
    assert main(["train", "stylegan", "--preset", "baby", "--data", str(idx_dir), "--out",
                 str(run), "--steps", "2", "--eval-every", "0", "--no-progress",
                 "--model-arg", "d_architecture=orig", "--model-arg", "mbstd_group=2"]) == 0
    model = json.loads((run / "config.json").read_text())["model"]
    assert (model["d_architecture"], model["mbstd_group"]) == ("orig", 2)
    assert main(["train", "stylegan", "--out", str(run), "--resume",
                 "--model-arg", "mbstd_group=4"]) == 1
    assert "cannot change --model-arg when resuming" in capsys.readouterr().err
    assert main(["train", "stylegan", "--preset", "baby", "--data", str(idx_dir), "--out",
                 str(tmp_path / "x"), "--model-arg", "no_such_field=1"]) == 1
    assert "no model field(s) no_such_field" in capsys.readouterr().err
    assert main(["train", "stylegan", "--preset", "baby", "--data", str(idx_dir), "--out",
                 str(tmp_path / "y"), "--model-arg", "d_architecture=skip"]) == 1
    assert "d_architecture must be" in capsys.readouterr().err


def test_cli_version_and_defaults_in_help(capsys):
    with pytest.raises(SystemExit) as e:
        main(["--version"])
    assert e.value.code == 0 and "ganserve 0." in capsys.readouterr().out
    with pytest.raises(SystemExit):
        main(["generate", "--help"])
    out = capsys.readouterr().out
    assert "(default: 8)" in out and "(default: 1.0)" in out


@pytest.mark.parametrize("argv, says", [
    (["train", "dcgan", "--out", "x", "--steps", "ten"], "expected a whole number >= 1"),
    (["evaluate", "models/m/1", "--psi", "3"], "truncation psi must be in [0, 2]"),
    (["generate", "m", "--psi", "abc"], "expected a number in [0, 2]"),
])
def test_cli_bad_values_are_usage_errors_exit_2(capsys, argv, says):
    with pytest.raises(SystemExit) as e:
        main(argv)
    err = capsys.readouterr().err
    assert e.value.code == 2 and says in err and "_positive" not in err


def test_cli_log_level_after_the_command(tmp_path, capsys):
    assert main(["generate", "no-such-model", "--models-dir", str(tmp_path),
                 "--log-level", "ERROR"]) == 1
    assert "no-such-model" in capsys.readouterr().err


def test_cli_serve_on_a_busy_port_is_one_line(tmp_path, capsys):
    import socket
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen()
        port = s.getsockname()[1]
        rc = main(["serve", "--models-dir", str(tmp_path), "--port", str(port)])
    err = capsys.readouterr().err
    assert rc == 1 and f"127.0.0.1:{port}" in err and "another --port" in err


def test_cli_messages_say_what_to_do_next(tmp_path, baby_exports, capsys):
    store = baby_exports["dcgan"].parent
    assert main(["evaluate", str(store / "7"), "--n", "10"]) == 1
    assert "has no version 7; versions: 1" in capsys.readouterr().err
    run = tmp_path / "run"
    run.mkdir()
    (run / "config.json").write_text("{}")
    assert main(["evaluate", str(run), "--n", "10"]) == 1
    assert "export it first" in capsys.readouterr().err


def test_cli_a_bug_shows_its_traceback(monkeypatch):
    """No catch-all: a ValueError from a bug is not turned into a one-line message."""
    from ganserve.cli import generate

    def broken(args, models_dir):
        raise ValueError("a bug deep inside")

    monkeypatch.setattr(generate, "run", broken)
    with pytest.raises(ValueError, match="a bug deep inside"):
        main(["generate", "fashion-dcgan"])


def test_cli_commands_use_the_store_of_the_settings_not_the_cwd(tmp_path, monkeypatch,
                                                                  idx_dir, extractor_dir,
                                                                  capsys):
    """export, evaluate and generate find the store through GANSERVE_MODELS_DIR, as serve
    and the workers do, wherever they are run from."""
    from tests.conftest import baby_run

    run = baby_run(tmp_path / "runs", "dcgan", idx_dir, steps=2)
    store = tmp_path / "store"
    shutil.copytree(extractor_dir, store / "_evaluators" / "fashion-mnist")
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    monkeypatch.setenv("GANSERVE_MODELS_DIR", str(store))
    assert main(["export", str(run), "--name", "cwd-free"]) == 0
    assert (store / "cwd-free" / "1" / "manifest.json").is_file()
    assert main(["evaluate", "cwd-free/1", "--n", "16", "--quick", "--no-write",
                 "--data", str(idx_dir)]) == 0          # the store's own evaluator
    assert main(["generate", "cwd-free", "--seeds", "0-1", "--outdir",
                 str(tmp_path / "out")]) == 0
    assert not (elsewhere / "models").exists()
    capsys.readouterr()


def test_cli_seed_store_copies_what_the_store_lacks(tmp_path, baby_exports, capsys):
    """The deployments' first-start step: shipped versions land whole; what the store holds
    (a re-run, a version a job made) is left alone."""
    shipped = tmp_path / "shipped"
    shutil.copytree(baby_exports["dcgan"], shipped / "baby-dcgan" / "1")
    shutil.copytree(baby_exports["cgan"], shipped / "baby-cgan" / "1")
    store = tmp_path / "store"
    (store / "baby-cgan" / "1").mkdir(parents=True)
    (store / "baby-cgan" / "1" / "mine").write_text("kept")
    assert main(["seed-store", "--from", str(shipped), "--to", str(store)]) == 0
    assert "baby-dcgan/1" in capsys.readouterr().out
    assert (store / "baby-dcgan" / "1" / "manifest.json").is_file()
    assert (store / "baby-cgan" / "1" / "mine").read_text() == "kept"
    assert not list(store.rglob(".seed-*"))
    assert main(["seed-store", "--from", str(shipped), "--to", str(store)]) == 0
    assert "nothing new" in capsys.readouterr().out
    # a shipped version deleted from the store stays deleted; a newly shipped one is copied
    shutil.rmtree(store / "baby-dcgan" / "1")
    shutil.copytree(baby_exports["dcgan"], shipped / "baby-dcgan" / "2")
    assert main(["seed-store", "--from", str(shipped), "--to", str(store)]) == 0
    assert "baby-dcgan/2" in capsys.readouterr().out
    assert not (store / "baby-dcgan" / "1").exists()
    assert (store / "baby-dcgan" / "2" / "manifest.json").is_file()


@pytest.mark.skipif(importlib.util.find_spec("torch") is None or __import__("torch").cuda
                    .is_available(), reason="needs torch and no GPU")
def test_cli_worker_training_on_cuda_without_a_gpu_is_one_line(tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("GANSERVE_TRAIN_DEVICE", "cuda")
    monkeypatch.setenv("GANSERVE_BROKER_URL", "redis://127.0.0.1:1/0")      # never reached
    assert main(["worker", "--queues", "train", "--data-dir", str(tmp_path)]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "GANSERVE_TRAIN_DEVICE=cuda: device=cuda, but torch" in err[0]


def test_cli_healthcheck_answers_by_exit_status(capsys):
    assert main(["healthcheck", "http://127.0.0.1:1/v2/health/ready", "--timeout", "1"]) == 1
    assert capsys.readouterr().err.startswith("unhealthy: http://127.0.0.1:1/v2/health/ready")


def test_cli_train_encoder_and_directions_add_to_a_version(tmp_path, baby_exports, idx_dir,
                                                           extractor_dir, capsys):
    vdir = tmp_path / "models" / "sg" / "1"
    shutil.copytree(baby_exports["stylegan"], vdir)
    assert main(["train-encoder", str(vdir), "--steps", "2", "--batch", "4",
                 "--data", str(idx_dir), "--extractor", str(extractor_dir)]) == 0
    assert main(["directions", str(vdir), "--n", "200", "--principal", "2",
                 "--learn-steps", "3", "--extractor", str(extractor_dir)]) == 0
    out = capsys.readouterr().out
    assert "2 principal and" in out and str(vdir / "directions.json") in out
    m = load_manifest(vdir)
    verify_files(vdir, m)
    assert "encoder" in m.graphs and m.inversion["encoder"]["steps"] == 2
    data = json.loads((vdir / m.directions).read_text())
    assert data["classes"]["method"] == "learned" and data["classes"]["learned"]["steps"] == 3
    # --learn-steps 0: LDA boundaries, no torch
    assert main(["directions", str(vdir), "--n", "200", "--principal", "2",
                 "--learn-steps", "0", "--extractor", str(extractor_dir)]) == 0
    data = json.loads((vdir / load_manifest(vdir).directions).read_text())
    assert "means" in data["classes"] and "vectors" not in data["classes"]
