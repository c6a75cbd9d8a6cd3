"""Secrets are masked in values and URIs, never in list items or harmless keys."""

from __future__ import annotations

import pytest

from newsclf.redact import MASK, is_secret_key, redact_text, redact_tree

SECRET = "S3cr/t@x"


@pytest.mark.parametrize(
    "text",
    [
        f"http://alice:{SECRET}@mlflow.internal:5000",  # user and password ("/" and "@" in it)
        "http://S3cr/t@x@mlflow.internal:5000",  # a token as user name
        f"http://:{SECRET}@mlflow.internal:5000",  # an empty user
        f"postgresql+psycopg2://mlflow@db:5432/mlflow?sslmode=require&password={SECRET}",
        f"🏃 View run x at: http://alice:{SECRET}@127.0.0.1:5000/#/experiments/1/runs/0a1",
        f"+extra.auth_header='Bearer {SECRET}'",
        f"mlflow.tracking_uri=https://{SECRET}@host",
        f"+extra.db='postgresql://db/x?sslmode=require&password={SECRET}'",
        # Hydra's launchers print a sweep's overrides with ":" escaped
        f"#0 : mlflow.tracking_uri=http\\://alice\\:{SECRET}@127.0.0.1\\:5077",
        # Hydra's dict syntax, with Hadoop's dotted setting names
        f"+spark.conf={{fs.s3a.secret.key:{SECRET},spark.executor.memory: 4g}}",
        f"'+spark.conf={{token: \"{SECRET}\", s3_secret_key:{SECRET}}}'",
    ],
)
def test_secret_forms_are_masked(text):
    assert "S3cr" not in redact_text(text)
    assert MASK in redact_text(text)


def test_hosts_and_harmless_text_stay():
    assert redact_text("http://alice:pw@db.internal:5000/x") == "http://***@db.internal:5000/x"
    for text in ("models:/newsclf-topic@champion", "mail bob@example.org, C=10", "a=b&c=d"):
        assert redact_text(text) == text


@pytest.mark.parametrize(
    "key",
    ["password", "passwd", "pwd", "db_pwd", "secret", "client_secret", "token", "hf_token",
     "accessToken", "api_key", "apikey", "auth", "auth_header", "authorization",
     "private_key", "credentials", "credential_file", "access_key", "mlflow.password",
     "spark.conf.fs.s3a.secret.key", "fs.s3a.access.key", "fs.azure.sas.token"],
)  # fmt: skip
def test_secret_keys(key):
    assert is_secret_key(key)


@pytest.mark.parametrize(
    "key",
    ["token_pattern", "author", "authors", "secretary", "key", "C", "vectorizer.token_pattern",
     "model.key", "spark.executor.memory"],
)  # fmt: skip
def test_harmless_keys(key):
    assert not is_secret_key(key)


def test_list_items_are_values_not_keys():
    config = {
        "terms": ["foreign secretary", "password reset", "token"],
        "db": {"pwd": SECRET, "uri": f"http://u:{SECRET}@h"},
        "credentials": {"user": "u", "key": SECRET},
    }
    assert redact_tree(config) == {
        "terms": ["foreign secretary", "password reset", "token"],
        "db": {"pwd": MASK, "uri": "http://***@h"},
        "credentials": MASK,
    }
