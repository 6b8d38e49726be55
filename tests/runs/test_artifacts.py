"""log_artifact / log_model: files kept with the run, listed in its report, served by the dashboard."""

import os
import warnings

import pytest

import trainrun
from trainrun.exceptions import ArtifactError
from trainrun.runs import active, record
from trainrun.runs.artifacts import log_artifact, log_model, model_kind


@pytest.fixture
def run_dir(tmp_path):
    folder = record.new_run_dir(tmp_path / "runs")
    record.write_json(folder / record.RUN_FILE, {"id": folder.name, "status": "completed"})
    with active.activate(folder):
        yield folder


def test_a_file_and_a_folder_are_copied_under_their_names(run_dir, tmp_path):
    src = tmp_path / "confusion.csv"
    src.write_text("a,b\n1,2\n")
    assert log_artifact(src) == run_dir / "artifacts" / "confusion.csv"
    folder = tmp_path / "outputs"
    (folder / "deep").mkdir(parents=True)
    (folder / "deep" / "pred.txt").write_text("0.9\n")
    copy = log_artifact(folder, name="predictions/v1")
    assert (copy / "deep" / "pred.txt").read_text() == "0.9\n"
    assert copy == run_dir / "artifacts" / "predictions" / "v1"
    # logging again replaces
    src.write_text("new\n")
    log_artifact(src)
    assert (run_dir / "artifacts" / "confusion.csv").read_text() == "new\n"


def test_links_in_a_folder_are_skipped_not_followed(run_dir, tmp_path, capfd):
    secret = tmp_path / "secret.txt"
    secret.write_text("not for the run")
    folder = tmp_path / "out"
    folder.mkdir()
    (folder / "ok.txt").write_text("ok")
    os.symlink(secret, folder / "link.txt")
    os.symlink(tmp_path, folder / "dirlink")
    copy = log_artifact(folder)
    assert sorted(p.name for p in copy.iterdir()) == ["ok.txt"]
    assert "link.txt (a link)" in capfd.readouterr().err


@pytest.mark.parametrize("name", ["../escape.txt", "/etc/x", "a/../../b", "", "a//b"])
def test_names_that_leave_artifacts_are_refused(run_dir, tmp_path, name):
    src = tmp_path / "f.txt"
    src.write_text("x")
    with pytest.raises(ArtifactError, match="relative path inside the run's artifacts"):
        log_artifact(src, name=name)
    assert not list(run_dir.parent.parent.glob("escape.txt"))


def test_a_missing_path_is_an_error_and_no_run_means_nothing_written(tmp_path):
    with pytest.raises(ArtifactError, match="does not exist") as info:
        log_artifact(tmp_path / "nope.txt")
    assert isinstance(info.value, ValueError)
    src = tmp_path / "f.txt"
    src.write_text("x")
    assert not active.is_active()
    assert log_artifact(src) is None


def test_a_torch_model_is_saved_as_safetensors_and_loads_back(run_dir):
    torch = pytest.importorskip("torch")
    from safetensors.torch import load_file

    net = torch.nn.Sequential(torch.nn.Linear(3, 4), torch.nn.ReLU(), torch.nn.Linear(4, 1))
    path = log_model(net, "net")
    assert path == run_dir / "artifacts" / "net.safetensors"
    fresh = torch.nn.Sequential(torch.nn.Linear(3, 4), torch.nn.ReLU(), torch.nn.Linear(4, 1))
    fresh.load_state_dict(load_file(path))
    x = torch.randn(5, 3)
    torch.testing.assert_close(fresh(x), net(x))
    config = record.read_json(run_dir / "artifacts" / "net.json")
    assert config["parameters"] == 21 and config["class"] == "torch.nn.modules.container.Sequential"


def test_a_scikit_learn_model_is_saved_with_joblib(run_dir):
    pytest.importorskip("sklearn")
    import joblib
    from sklearn.linear_model import LinearRegression

    model = LinearRegression().fit([[0.0], [1.0], [2.0]], [1.0, 3.0, 5.0])
    assert model_kind(model) == "sklearn"
    path = log_model(model)
    assert joblib.load(path).predict([[3.0]])[0] == pytest.approx(7.0)


def test_an_unknown_model_or_a_folder_name_is_refused(run_dir):
    with pytest.raises(ArtifactError, match="Keras models, PyTorch nn.Modules and scikit-learn"):
        log_model({"weights": [1, 2]})
    torch = pytest.importorskip("torch")
    with pytest.raises(ArtifactError, match="plain file name"):
        log_model(torch.nn.Linear(1, 1), "sub/model")


def test_artifacts_are_listed_with_sizes_in_the_report_and_downloadable(run_dir, tmp_path):
    src = tmp_path / "vocab.txt"
    src.write_bytes(b"x" * 1234)
    log_artifact(src, name="data/vocab.txt")
    report = trainrun.run_report(run_dir)
    listed = {a["path"]: a["size"] for a in report.data["artifacts"]}
    assert listed == {"data/vocab.txt": 1234}
    html = report.html
    assert "data/vocab.txt" in html and "1.2 KiB" in html

    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="Using `httpx` with `starlette.testclient`")
        from starlette.testclient import TestClient
    from trainrun.web.app import create_app

    client = TestClient(create_app(run_dir.parent), base_url="http://127.0.0.1")
    got = client.get(f"/runs/{run_dir.name}/files/artifacts/data/vocab.txt")
    assert got.status_code == 200 and got.content == b"x" * 1234
