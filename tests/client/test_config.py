"""Configuration from arguments and the VAULT_*/BAO_* environment; bad values fail early."""

from __future__ import annotations

from pathlib import Path

import pytest

from vault_async import AsyncVaultClient, ClientConfig, InvalidConfig


def test_env_vault_names(tmp_path: Path) -> None:
    ca = tmp_path / "ca.pem"
    ca.write_text("x")
    env = {
        "VAULT_ADDR": "https://vault.example:8200/",
        "VAULT_TOKEN": "tok-env",
        "VAULT_NAMESPACE": "team-a",
        "VAULT_CACERT": str(ca),
        "VAULT_SKIP_VERIFY": "true",
        "VAULT_CLIENT_TIMEOUT": "15s",
        "VAULT_MAX_RETRIES": "5",
    }
    config = ClientConfig.from_env(env, home=tmp_path)
    assert config.addr == "https://vault.example:8200"
    assert config.token == "tok-env"
    assert config.namespace == "team-a"
    assert config.ca_cert == str(ca)
    assert config.skip_verify is True
    assert config.timeout == 15.0
    assert config.max_retries == 5


def test_bao_names_and_vault_precedence(tmp_path: Path) -> None:
    env = {"BAO_ADDR": "http://bao:8200", "BAO_TOKEN": "bao-tok", "VAULT_TOKEN": "vault-tok"}
    config = ClientConfig.from_env(env, home=tmp_path)
    assert config.addr == "http://bao:8200"
    assert config.token == "vault-tok"


def test_token_falls_back_to_home_file(tmp_path: Path) -> None:
    (tmp_path / ".vault-token").write_text("file-token\n")
    assert ClientConfig.from_env({}, home=tmp_path).token == "file-token"
    assert ClientConfig.from_env({}, home=tmp_path / "nowhere").token is None


def test_repr_hides_token() -> None:
    config = ClientConfig(addr="http://v:8200", token="very-secret-token")
    assert "very-secret-token" not in repr(config)
    client = AsyncVaultClient(config=config)
    assert "very-secret-token" not in repr(client)


@pytest.mark.parametrize(
    ("env", "setting"),
    [
        ({"VAULT_ADDR": "vault:8200"}, "VAULT_ADDR"),
        ({"VAULT_ADDR": "http://vault:99999"}, "VAULT_ADDR"),
        ({"VAULT_ADDR": "ftp://vault"}, "VAULT_ADDR"),
        ({"VAULT_CLIENT_TIMEOUT": "-3"}, "VAULT_CLIENT_TIMEOUT"),
        ({"VAULT_CLIENT_TIMEOUT": "soon"}, "VAULT_CLIENT_TIMEOUT"),
        ({"VAULT_MAX_RETRIES": "-1"}, "VAULT_MAX_RETRIES"),
        ({"VAULT_CACERT": "/does/not/exist.pem"}, "VAULT_CACERT"),
        ({"VAULT_CAPATH": "/does/not/exist"}, "VAULT_CAPATH"),
        ({"VAULT_SKIP_VERIFY": "maybe"}, "VAULT_SKIP_VERIFY"),
        ({"VAULT_CLIENT_CERT": "/nope.pem"}, "VAULT_CLIENT"),
    ],
)
def test_bad_environment_names_the_setting(
    env: dict[str, str], setting: str, tmp_path: Path
) -> None:
    with pytest.raises(InvalidConfig, match=setting):
        ClientConfig.from_env(env, home=tmp_path)


def test_bad_arguments_fail_at_construction() -> None:
    with pytest.raises(InvalidConfig, match="VAULT_CLIENT_TIMEOUT"):
        AsyncVaultClient("http://v:8200", timeout=-1, config=ClientConfig())
    with pytest.raises(InvalidConfig, match="VAULT_ADDR"):
        AsyncVaultClient("not a url", config=ClientConfig())
    with pytest.raises(InvalidConfig, match="VAULT_CACERT"):
        AsyncVaultClient("https://v:8200", verify="/missing/ca.pem", config=ClientConfig())


def test_arguments_override_config() -> None:
    base = ClientConfig(addr="http://a:8200", token="t1", timeout=5)
    client = AsyncVaultClient("http://b:8200", "t2", timeout=9, max_retries=0, config=base)
    assert client.config.addr == "http://b:8200"
    assert client.token == "t2"
    assert client.config.timeout == 9
    assert client.config.max_retries == 0
    client.set_token(None)
    assert client.token is None


def test_client_reads_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.setenv("VAULT_ADDR", "http://envhost:8200")
    monkeypatch.setenv("VAULT_TOKEN", "from-env")
    client = AsyncVaultClient()
    assert client.config.addr == "http://envhost:8200"
    assert client.token == "from-env"
