"""The `outcry` command, run as a real process against both databases."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from app.core import paths
from tests.conftest import _truncate
from tests.support.processes import outcry_env, run_outcry


@pytest.fixture(params=["sqlite", "postgresql"])
def env(request: pytest.FixtureRequest, tmp_path: Path) -> dict[str, str]:
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path / 'data' / 'outcry.db'}"
    else:
        url = request.getfixturevalue("pg_url")
        _truncate(url)
    return outcry_env(database_url=url, secret_key="cli-secret")


def test_upgrade_import_list(env: dict[str, str], tmp_path: Path) -> None:
    upgraded = run_outcry("db", "upgrade", env=env, cwd=tmp_path)
    assert upgraded.returncode == 0, upgraded.stderr
    files = [str(p) for p in sorted(paths.demo_dir().glob("*.yaml"))]
    first = run_outcry("appeal", "import", *files, env=env, cwd=tmp_path)
    assert first.returncode == 0, first.stderr
    assert first.stdout.splitlines() == [
        "created almaty-coach-factory",
        "created kazakhstan-union-activists",
    ]
    again = run_outcry("appeal", "import", files[0], env=env, cwd=tmp_path)
    assert again.stdout.strip() == "updated almaty-coach-factory"
    listed = run_outcry("appeal", "list", env=env, cwd=tmp_path)
    assert "almaty-coach-factory\topen\tsigned=0\tsent=0" in listed.stdout


def test_import_error_names_file_and_field(env: dict[str, str], tmp_path: Path) -> None:
    run_outcry("db", "upgrade", env=env, cwd=tmp_path)
    data = yaml.safe_load((paths.demo_dir() / "almaty-coach-factory.yaml").read_text())
    data["targets"][0]["email"] = "not an address"
    data["colour"] = "red"
    bad = tmp_path / "bad.yaml"
    bad.write_text(yaml.safe_dump(data, allow_unicode=True))
    result = run_outcry("appeal", "import", str(bad), env=env, cwd=tmp_path)
    assert result.returncode == 1
    assert f"{bad}: targets.0.email:" in result.stderr
    assert f"{bad}: colour:" in result.stderr
    assert run_outcry("appeal", "list", env=env, cwd=tmp_path).stdout == ""


def test_tokens_and_organisers(env: dict[str, str], tmp_path: Path) -> None:
    run_outcry("db", "upgrade", env=env, cwd=tmp_path)
    token = run_outcry("token", "create", env=env, cwd=tmp_path)
    assert token.returncode == 0
    assert token.stdout.strip().startswith("oc_")
    union = run_outcry("token", "create", "--organisation", "unite", env=env, cwd=tmp_path)
    assert union.stdout.strip() != token.stdout.strip()
    added = run_outcry(
        "organiser",
        "add",
        "Org@Example.org",
        env=env,
        cwd=tmp_path,
        input="a long enough password\na long enough password\n",
    )
    assert added.returncode == 0, added.stderr
    assert "added organiser org@example.org" in added.stdout
    short = run_outcry(
        "organiser", "add", "b@example.org", env=env, cwd=tmp_path, input="short\nshort\n"
    )
    assert short.returncode == 1
    assert "password" in short.stderr


def test_bad_setting_names_the_variable(tmp_path: Path) -> None:
    env = outcry_env(smtp_url="http://nope", database_url=f"sqlite:///{tmp_path / 'x.db'}")
    result = run_outcry("db", "upgrade", env=env, cwd=tmp_path)
    assert result.returncode == 2
    assert "OUTCRY_SMTP_URL" in result.stderr


def test_worker_needs_a_broker(tmp_path: Path) -> None:
    env = outcry_env(database_url=f"sqlite:///{tmp_path / 'x.db'}")
    result = run_outcry("worker", env=env, cwd=tmp_path)
    assert result.returncode == 1
    assert "OUTCRY_BROKER_URL" in result.stderr


def test_the_worker_says_when_faxes_are_written_to_a_folder_instead_of_sent(
    tmp_path: Path,
) -> None:
    env = outcry_env(database_url=f"sqlite:///{tmp_path / 'x.db'}", outbox_dir="/data/outbox")
    result = run_outcry("worker", env=env, cwd=tmp_path)
    assert "warning: OUTCRY_FAX_GATEWAY is not set" in result.stderr
    assert "/data/outbox/fax" in result.stderr

    env["OUTCRY_FAX_GATEWAY"] = "{number}@fax.example.net"
    result = run_outcry("worker", env=env, cwd=tmp_path)
    assert "OUTCRY_FAX_GATEWAY" not in result.stderr


def test_a_short_password_is_refused_before_it_is_typed_twice(tmp_path: Path) -> None:
    env = outcry_env(database_url=f"sqlite:///{tmp_path / 'x.db'}", secret_key="cli-secret")
    assert run_outcry("db", "upgrade", env=env, cwd=tmp_path).returncode == 0
    good = "a long enough password"

    added = run_outcry(
        "organiser", "add", "a@example.org", env=env, cwd=tmp_path, input=f"short\n{good}\n{good}\n"
    )

    assert added.returncode == 0, added.stderr
    assert added.stderr.count("at least 12 characters") == 1
    assert added.stdout.count("Repeat for confirmation") == 1  # only for the good one
    assert "added organiser a@example.org" in added.stdout
    mismatch = run_outcry(
        "organiser", "add", "b@example.org", env=env, cwd=tmp_path, input=f"{good}\n{good}!\n"
    )
    assert mismatch.returncode == 1
    assert "the two passwords are not the same" in mismatch.stderr


def test_served_links_follow_the_port_unless_the_base_url_is_set(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from app import cli
    from app.core.config import get_settings

    monkeypatch.delenv("OUTCRY_BASE_URL", raising=False)
    get_settings.cache_clear()
    try:
        assert cli._served_settings("127.0.0.1", 18601).base_url == "http://127.0.0.1:18601"
        assert cli._served_settings("0.0.0.0", 8080).base_url == "http://127.0.0.1:8080"
        assert cli._served_settings("::", 8080).base_url == "http://[::1]:8080"
        monkeypatch.setenv("OUTCRY_BASE_URL", "https://letters.example.org")
        get_settings.cache_clear()
        assert cli._served_settings("127.0.0.1", 18601).base_url == "https://letters.example.org"
    finally:
        get_settings.cache_clear()


def test_demo_on_a_port_links_there_says_a_taken_port_and_prints_a_login(
    tmp_path: Path,
) -> None:
    import re

    import httpx2 as httpx

    from tests.support.processes import outcry, stop, wait_http, wait_until
    from tests.support.smtp import free_port

    port = free_port()
    base = f"http://127.0.0.1:{port}"
    env = outcry_env(database_url=f"sqlite:///{tmp_path / 'demo.db'}", secret_key="demo-secret")
    log = tmp_path / "demo.log"
    proc = outcry("demo", "--port", str(port), env=env, cwd=tmp_path, log=log)
    try:
        wait_http(f"{base}/healthz", proc, log)
        printed = log.read_text()
        assert f"demo appeal: {base}/a/almaty-coach-factory" in printed
        login = re.search(r"as demo@example\.org, password (\S+) ", printed)
        assert login, printed
        # Both demo targets have fax numbers, and no gateway is set.
        fax_folder = tmp_path.resolve() / "outbox" / "fax"
        assert f"faxes are not sent but written as PDFs to {fax_folder}" in printed

        taken = run_outcry("serve", "--port", str(port), env=env, cwd=tmp_path)
        assert taken.returncode == 1
        assert f"port {port} on 127.0.0.1 is already in use" in taken.stderr
        assert "Errno" not in taken.stderr
        assert "http://" not in taken.stdout  # no URLs printed for a server that never ran

        signed = httpx.post(
            f"{base}/api/v1/appeals/almaty-coach-factory/letters",
            json={"name": "Ada Example", "email": "ada@example.net", "country": "GB"},
        )
        assert signed.status_code == 202, signed.text
        assert signed.json()["status_url"].startswith(f"{base}/")
        outbox = tmp_path / "outbox"
        wait_until(lambda: any(outbox.glob("*.confirm.*.eml")), timeout=30)
        [eml] = outbox.glob("*.confirm.*.eml")
        assert f"{base}/confirm/" in _body(eml)

        with httpx.Client(base_url=base) as browser:
            form = browser.get("/login").text
            csrf = re.search(r'name="csrf_token" value="([^"]+)"', form)
            assert csrf
            response = browser.post(
                "/login",
                data={
                    "email": "demo@example.org",
                    "password": login.group(1),
                    "csrf_token": csrf.group(1),
                    "next": "/dashboard",
                },
            )
            assert response.status_code == 303, response.text
            assert "Almaty Coach Factory" in browser.get("/dashboard").text
    finally:
        stop(proc)


def _body(eml: Path) -> str:
    import email
    from email import policy

    message = email.message_from_bytes(eml.read_bytes(), policy=policy.default)
    body = message.get_body(("plain",))
    assert body is not None
    return str(body.get_content())


def test_inbound_says_what_it_needs(tmp_path: Path) -> None:
    env = outcry_env(database_url=f"sqlite:///{tmp_path / 'outcry.db'}", secret_key="s")
    missing = run_outcry("inbound", env=env, cwd=tmp_path)
    assert missing.returncode == 1
    assert "OUTCRY_BOUNCE_DOMAIN is not set" in missing.stderr
    env["OUTCRY_BOUNCE_DOMAIN"] = "bounces.example.org"
    imap = run_outcry("inbound", "--protocol", "imap", env=env, cwd=tmp_path)
    assert imap.returncode == 1
    assert "OUTCRY_IMAP_URL is not set" in imap.stderr
    env["OUTCRY_BOUNCE_DOMAIN"] = "not a domain"
    bad = run_outcry("inbound", env=env, cwd=tmp_path)
    assert bad.returncode == 2
    assert "OUTCRY_BOUNCE_DOMAIN" in bad.stderr
