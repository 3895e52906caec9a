"""Settings: each source in its place in the documented precedence, profiles, and the
ways a config file or a value can be wrong."""

from __future__ import annotations

from pathlib import Path

import pytest

from assetctl.config import Settings, load_settings
from assetctl.errors import ConfigError, ExitCode


def write_config(folder: Path, text: str) -> Path:
    path = folder / "config.toml"
    path.write_text(text, encoding="utf-8")
    return path


@pytest.fixture
def config_file(tmp_path: Path) -> Path:
    return write_config(
        tmp_path,
        """
default_profile = "work"

[profiles.work]
server_url = "https://kc.work.example"
realm = "from-config"
client_id = "work-cli"
timeout = 12

[profiles.lab]
server_url = "https://kc.lab.example"
realm = "lab"
""",
    )


def test_defaults_without_any_source(tmp_path):
    settings = load_settings(
        {}, env={"ASSETCTL_CONFIG": str(tmp_path / "none.toml")}, cwd=tmp_path
    )

    assert settings == Settings(config_file=tmp_path / "none.toml")
    assert settings.profile == "default"
    assert settings.sources == {"profile": "built-in default"}
    with pytest.raises(ConfigError) as caught:
        settings.issuer  # noqa: B018
    assert caught.value.exit_code == ExitCode.BAD_INPUT
    assert "ASSETCTL_SERVER_URL" in (caught.value.hint or "")


def test_precedence_of_every_source(tmp_path, config_file):
    (tmp_path / ".env").write_text("ASSETCTL_REALM=from-dotenv\n", encoding="utf-8")
    env = {
        "ASSETCTL_CONFIG": str(config_file),
        "KEYCLOAK_REALM": "from-legacy",
        "ASSETCTL_REALM": "from-env",
    }

    def realm(flags, env):
        s = load_settings(flags, env=env, cwd=tmp_path)
        return s.realm, s.sources.get("realm")

    assert realm({"realm": "from-flag"}, env) == ("from-flag", "flag")

    value, source = realm({}, env)
    assert value == "from-env" and "environment" in source

    del env["ASSETCTL_REALM"]
    value, source = realm({}, env)
    assert value == "from-legacy" and "old script" in source

    del env["KEYCLOAK_REALM"]
    value, source = realm({}, env)
    assert value == "from-dotenv" and ".env" in source

    (tmp_path / ".env").unlink()
    value, source = realm({}, env)
    assert value == "from-config" and "config file" in source and "work" in source

    write_config(tmp_path, "")
    value, source = realm({}, env)
    assert (value, source) == (None, None)


def test_each_setting_names_its_own_source(tmp_path, config_file):
    (tmp_path / ".env").write_text(
        "KEYCLOAK_CLIENT_ID=dotenv-client\nACCESS_TOKEN=eyJold.script.token\n",
        encoding="utf-8",
    )
    env = {
        "ASSETCTL_CONFIG": str(config_file),
        "PROTECTED_API_URL": "https://api.legacy.example",
        "ASSETCTL_TIMEOUT": "7.5",
    }

    s = load_settings(
        {"server_url": "https://kc.flag.example", "realm": None}, env=env, cwd=tmp_path
    )

    assert (
        s.server_url == "https://kc.flag.example" and s.sources["server_url"] == "flag"
    )
    assert s.realm == "from-config" and "config file" in s.sources["realm"]
    assert s.client_id == "dotenv-client" and ".env" in s.sources["client_id"]
    assert (
        s.api_url == "https://api.legacy.example"
        and "old script" in s.sources["api_url"]
    )
    assert s.timeout == 7.5 and "environment" in s.sources["timeout"]
    assert s.keyring_timeout == 10.0 and "keyring_timeout" not in s.sources
    assert s.issuer == "https://kc.flag.example/realms/from-config"
    assert s.require_api_url() == "https://api.legacy.example"


def test_legacy_variables_work_alone(tmp_path):
    env = {
        "ASSETCTL_CONFIG": str(tmp_path / "none.toml"),
        "KEYCLOAK_SERVER_URL": "http://127.0.0.1:8080/",
        "KEYCLOAK_REALM": "old",
        "KEYCLOAK_CLIENT_ID": "old-cli",
        "PROTECTED_API_URL": "http://127.0.0.1:9000/api/",
    }

    s = load_settings({}, env=env, cwd=tmp_path)

    assert s.issuer == "http://127.0.0.1:8080/realms/old"
    assert s.client_id == "old-cli"
    assert s.require_api_url() == "http://127.0.0.1:9000/api"


def test_empty_variables_do_not_count(tmp_path):
    env = {
        "ASSETCTL_CONFIG": str(tmp_path / "none.toml"),
        "ASSETCTL_REALM": "",
        "KEYCLOAK_REALM": "old",
    }
    assert load_settings({}, env=env, cwd=tmp_path).realm == "old"


def test_the_config_file_is_found_in_the_users_config_folder(isolated_home, tmp_path):
    folder = isolated_home / ".config" / "assetctl"
    folder.mkdir(parents=True)
    write_config(folder, '[profiles.default]\nrealm = "found"\n')

    s = load_settings(
        {}, env={"XDG_CONFIG_HOME": str(isolated_home / ".config")}, cwd=tmp_path
    )

    assert s.realm == "found"
    assert s.config_file == folder / "config.toml"


@pytest.mark.parametrize(
    ("flags", "env", "profile", "source"),
    [
        ({"profile": "lab"}, {"ASSETCTL_PROFILE": "other"}, "lab", "flag"),
        ({}, {"ASSETCTL_PROFILE": "lab"}, "lab", "env ASSETCTL_PROFILE"),
        ({}, {}, "work", "config file default_profile"),
    ],
)
def test_profile_choice(tmp_path, config_file, flags, env, profile, source):
    env = {"ASSETCTL_CONFIG": str(config_file), **env}

    s = load_settings(flags, env=env, cwd=tmp_path)

    assert s.profile == profile
    assert s.sources["profile"] == source
    expected_realm = {"lab": "lab", "work": "from-config"}.get(profile)
    assert s.realm == expected_realm


def test_a_profile_takes_nothing_from_another_profile(tmp_path, config_file):
    s = load_settings(
        {"profile": "lab"}, env={"ASSETCTL_CONFIG": str(config_file)}, cwd=tmp_path
    )

    assert s.client_id == "assetctl"  # work's client_id stays in work
    assert s.timeout == 30.0


def test_unknown_top_level_key_names_file_and_key(tmp_path):
    path = write_config(tmp_path, 'server_url = "https://kc"\n')

    with pytest.raises(ConfigError) as caught:
        load_settings({}, env={"ASSETCTL_CONFIG": str(path)}, cwd=tmp_path)
    assert str(path) in caught.value.message
    assert "'server_url'" in caught.value.message
    assert "profiles" in (caught.value.hint or "")


def test_unknown_profile_key_names_file_profile_and_key(tmp_path):
    path = write_config(tmp_path, '[profiles.default]\nrelm = "typo"\n')

    with pytest.raises(ConfigError) as caught:
        load_settings({}, env={"ASSETCTL_CONFIG": str(path)}, cwd=tmp_path)
    assert str(path) in caught.value.message
    assert "'relm'" in caught.value.message and "'default'" in caught.value.message
    assert "realm" in (caught.value.hint or "")


@pytest.mark.parametrize(
    "text",
    [
        '[profiles]\nserver_url = "https://kc.example"\n',  # forgot the profile name
        "profiles = 3\n",
        "[profiles]\ndefault = 3\n",
    ],
)
def test_profiles_that_are_not_tables_are_rejected(tmp_path, text):
    path = write_config(tmp_path, text)

    with pytest.raises(ConfigError) as caught:
        load_settings({}, env={"ASSETCTL_CONFIG": str(path)}, cwd=tmp_path)
    assert str(path) in caught.value.message


@pytest.mark.parametrize(
    "content",
    [
        b'[profiles.default\nrealm = "x"\n',
        b'realm = "unterminated\n',
        b"\xff\xfe not utf-8",
    ],
)
def test_a_broken_config_file_is_a_config_error(tmp_path, content):
    path = tmp_path / "config.toml"
    path.write_bytes(content)

    with pytest.raises(ConfigError) as caught:
        load_settings({}, env={"ASSETCTL_CONFIG": str(path)}, cwd=tmp_path)
    assert str(path) in caught.value.message
    assert caught.value.exit_code == ExitCode.BAD_INPUT


@pytest.mark.parametrize("value", ["abc", "", "0", "-5", "nan", "inf"])
@pytest.mark.parametrize("name", ["ASSETCTL_TIMEOUT", "ASSETCTL_KEYRING_TIMEOUT"])
def test_a_bad_timeout_is_a_config_error(tmp_path, name, value):
    env = {"ASSETCTL_CONFIG": str(tmp_path / "none.toml"), name: value}
    if value == "":
        assert load_settings({}, env=env, cwd=tmp_path).timeout == 30.0  # unset
        return

    with pytest.raises(ConfigError, match="timeout"):
        load_settings({}, env=env, cwd=tmp_path)


def test_a_bad_timeout_in_the_config_file_is_a_config_error(tmp_path):
    path = write_config(tmp_path, '[profiles.default]\ntimeout = "soon"\n')
    with pytest.raises(ConfigError, match="timeout"):
        load_settings({}, env={"ASSETCTL_CONFIG": str(path)}, cwd=tmp_path)


def test_a_bad_timeout_flag_is_a_config_error(tmp_path):
    with pytest.raises(ConfigError, match="timeout"):
        load_settings(
            {"timeout": -1.0},
            env={"ASSETCTL_CONFIG": str(tmp_path / "n")},
            cwd=tmp_path,
        )


def test_an_unknown_token_store_names_where_it_came_from(tmp_path):
    env = {
        "ASSETCTL_CONFIG": str(tmp_path / "none.toml"),
        "ASSETCTL_TOKEN_STORE": "plaintext",
    }

    with pytest.raises(ConfigError) as caught:
        load_settings({}, env=env, cwd=tmp_path)
    assert "'plaintext'" in caught.value.message
    assert "environment" in caught.value.message
    assert "file" in (caught.value.hint or "")


@pytest.mark.parametrize(
    ("value", "expected"),
    [("1", True), ("true", True), ("YES", True), ("0", False), ("no", False)],
)
def test_allow_http_from_the_environment(tmp_path, value, expected):
    env = {"ASSETCTL_CONFIG": str(tmp_path / "none.toml"), "ASSETCTL_ALLOW_HTTP": value}
    assert load_settings({}, env=env, cwd=tmp_path).allow_http is expected


def test_dotenv_is_read_from_the_working_directory_only(tmp_path):
    here, elsewhere = tmp_path / "here", tmp_path / "elsewhere"
    here.mkdir()
    elsewhere.mkdir()
    (elsewhere / ".env").write_text("KEYCLOAK_REALM=elsewhere\n", encoding="utf-8")
    env = {"ASSETCTL_CONFIG": str(tmp_path / "none.toml")}

    assert load_settings({}, env=env, cwd=here).realm is None
    assert load_settings({}, env=env, cwd=elsewhere).realm == "elsewhere"


def test_settings_are_frozen(tmp_path):
    s = load_settings({}, env={"ASSETCTL_CONFIG": str(tmp_path / "n")}, cwd=tmp_path)
    with pytest.raises(AttributeError):
        s.realm = "changed"  # type: ignore[misc]


def test_a_dotenv_that_is_not_text_is_a_config_error(tmp_path):
    (tmp_path / ".env").write_bytes(b"KEYCLOAK_REALM=\xff\xfe\n")
    with pytest.raises(ConfigError, match=r"\.env"):
        load_settings(
            {}, env={"ASSETCTL_CONFIG": str(tmp_path / "none.toml")}, cwd=tmp_path
        )


def test_default_profile_must_name_a_profile(tmp_path):
    path = write_config(
        tmp_path, 'default_profile = "nope"\n[profiles.work]\nrealm = "r"\n'
    )
    with pytest.raises(ConfigError, match="default_profile 'nope'.*work"):
        load_settings({}, env={"ASSETCTL_CONFIG": str(path)}, cwd=tmp_path)


def test_a_number_where_a_url_belongs_is_refused(tmp_path):
    path = write_config(tmp_path, "[profiles.default]\nserver_url = 5\n")
    with pytest.raises(ConfigError, match="server_url must be a string"):
        load_settings({}, env={"ASSETCTL_CONFIG": str(path)}, cwd=tmp_path)


def test_an_unknown_profile_is_named_when_settings_are_missing(config_file, tmp_path):
    settings = load_settings(
        {"profile": "wrok"}, env={"ASSETCTL_CONFIG": str(config_file)}, cwd=tmp_path
    )
    with pytest.raises(ConfigError, match="profile 'wrok' is not in the config file"):
        _ = settings.issuer


def test_assetctl_config_naming_a_directory_is_refused(tmp_path):
    with pytest.raises(ConfigError, match="directory"):
        load_settings({}, env={"ASSETCTL_CONFIG": str(tmp_path)}, cwd=tmp_path)


def test_assetctl_config_naming_a_missing_file_warns(tmp_path, caplog):
    load_settings(
        {}, env={"ASSETCTL_CONFIG": str(tmp_path / "gone.toml")}, cwd=tmp_path
    )
    assert "does not exist" in caplog.text


def test_a_mistake_in_another_profile_is_reported_at_once(tmp_path):
    path = write_config(
        tmp_path,
        '[profiles.default]\nrealm = "r"\n\n[profiles.prod]\nserver_ulr = "https://x"\n',
    )
    with pytest.raises(
        ConfigError, match="profile 'prod' has unknown key 'server_ulr'"
    ):
        load_settings({}, env={"ASSETCTL_CONFIG": str(path)}, cwd=tmp_path)


def test_sources_name_the_variable(tmp_path):
    env = {"ASSETCTL_CONFIG": str(tmp_path / "none.toml"), "KEYCLOAK_REALM": "r"}
    s = load_settings({}, env={**env, "ASSETCTL_TIMEOUT": "5"}, cwd=tmp_path)
    assert s.sources["realm"] == "old script variable KEYCLOAK_REALM"
    assert s.sources["timeout"] == "environment ASSETCTL_TIMEOUT"


@pytest.mark.parametrize("name", ["", "a/b", "../x", "-dash", "a b", "x" * 65])
def test_a_profile_name_that_could_clash_in_file_names_is_refused(tmp_path, name):
    with pytest.raises(ConfigError, match="is not a profile name"):
        load_settings({"profile": name}, env={}, cwd=tmp_path)


def test_a_profile_name_from_the_environment_is_checked_too(tmp_path):
    with pytest.raises(ConfigError, match="ASSETCTL_PROFILE"):
        load_settings({}, env={"ASSETCTL_PROFILE": "a__b/c"}, cwd=tmp_path)


@pytest.mark.parametrize("name", ["default", "prod-eu.2", "CI_runner"])
def test_ordinary_profile_names_are_fine(tmp_path, name):
    assert load_settings({"profile": name}, env={}, cwd=tmp_path).profile == name


def test_a_variable_beating_the_chosen_profiles_value_is_warned_about(
    tmp_path, config_file, caplog
):
    env = {"ASSETCTL_CONFIG": str(config_file), "ASSETCTL_REALM": "elsewhere"}
    settings = load_settings({"profile": "lab"}, env=env, cwd=tmp_path)

    assert settings.realm == "elsewhere"  # the documented precedence stands
    assert "ASSETCTL_REALM overrides realm of profile 'lab'" in caplog.text


def test_a_flag_or_an_equal_value_is_not_warned_about(tmp_path, config_file, caplog):
    env = {"ASSETCTL_CONFIG": str(config_file), "ASSETCTL_REALM": "lab"}
    load_settings(
        {"profile": "lab", "server_url": "https://x.example"}, env=env, cwd=tmp_path
    )
    assert "overrides" not in caplog.text


@pytest.mark.parametrize(
    "url", ["http://[::1", "http://127.0.0.1:99999", "ftp://host", "https://"]
)
def test_a_url_that_cannot_be_used_is_a_config_error(tmp_path, url):
    with pytest.raises(ConfigError, match="api_url") as caught:
        load_settings({"api_url": url}, env={}, cwd=tmp_path)
    assert caught.value.exit_code == ExitCode.BAD_INPUT


def test_a_ca_bundle_that_is_not_a_file_is_a_config_error(tmp_path):
    with pytest.raises(ConfigError, match="CA bundle"):
        load_settings({"ca_bundle": str(tmp_path / "none.pem")}, env={}, cwd=tmp_path)


def test_a_yes_or_no_that_is_neither_is_a_config_error(tmp_path):
    env = {
        "ASSETCTL_CONFIG": str(tmp_path / "none.toml"),
        "ASSETCTL_ALLOW_HTTP": "maybe",
    }
    with pytest.raises(ConfigError, match="allow_http must be yes or no"):
        load_settings({}, env=env, cwd=tmp_path)


def test_a_timeout_of_true_is_not_one_second(tmp_path):
    path = write_config(tmp_path, "[profiles.default]\ntimeout = true\n")
    with pytest.raises(ConfigError, match="timeout must be a positive number"):
        load_settings({}, env={"ASSETCTL_CONFIG": str(path)}, cwd=tmp_path)
