"""client.properties mapped once to the Java client's and librdkafka's names, secrets kept out of errors."""

from __future__ import annotations

from pathlib import Path

import pytest

from modelstream.kafka_properties import (
    KafkaPropertiesError,
    kafka_properties,
    load_kafka_properties,
    masked,
    parse_properties,
)


def test_properties_text_with_comments_separators_and_continuations() -> None:
    text = "# a comment\n! another\nsecurity.protocol = SASL_SSL\nsasl.mechanism:SCRAM-SHA-512\n" \
        'sasl.jaas.config=org.apache.kafka.common.security.scram.ScramLoginModule required \\\n' \
        '    username="app" password="s3=cr:et";\n'  # fmt: skip
    assert parse_properties(text) == {
        "security.protocol": "SASL_SSL",
        "sasl.mechanism": "SCRAM-SHA-512",
        "sasl.jaas.config": 'org.apache.kafka.common.security.scram.ScramLoginModule required username="app" '
        'password="s3=cr:et";',
    }


def test_sasl_ssl_with_a_jaas_config_maps_to_both_clients(tmp_path: Path) -> None:
    ca = tmp_path / "ca.pem"
    ca.write_text("-----BEGIN CERTIFICATE-----\n")
    jaas = 'org.apache.kafka.common.security.scram.ScramLoginModule required username="app" password="p\\"w";'
    values = {"security.protocol": "sasl_ssl", "sasl.mechanism": "SCRAM-SHA-512", "sasl.jaas.config": jaas,
              "ssl.truststore.location": str(ca), "client.dns.lookup": "use_all_dns_ips"}  # fmt: skip
    props = kafka_properties(values)
    common = {"security.protocol": "SASL_SSL", "sasl.mechanism": "SCRAM-SHA-512"}
    assert props.librdkafka == {
        **common, "sasl.username": "app", "sasl.password": 'p"w', "ssl.ca.location": str(ca)
    }  # fmt: skip
    assert props.java == {
        **common, "sasl.jaas.config": jaas, "ssl.truststore.type": "PEM", "ssl.truststore.location": str(ca),
        "client.dns.lookup": "use_all_dns_ips",
    }  # fmt: skip


def test_username_and_password_build_the_java_login_module() -> None:
    props = kafka_properties({"security.protocol": "SASL_PLAINTEXT", "username": "u", "password": 'a"b'})
    assert props.java["sasl.mechanism"] == "PLAIN"
    assert props.java["sasl.jaas.config"] == (
        'org.apache.kafka.common.security.plain.PlainLoginModule required username="u" password="a\\"b";'
    )
    assert (props.librdkafka["sasl.username"], props.librdkafka["sasl.password"]) == ("u", 'a"b')
    assert masked(dict(props.librdkafka))["sasl.password"] == "****"


def test_no_file_is_a_plaintext_broker_and_nothing_to_set() -> None:
    props = load_kafka_properties("")
    assert (props.java, props.librdkafka, props.protocol) == ({}, {}, "PLAINTEXT")


@pytest.mark.parametrize(
    ("values", "expected"),
    [
        ({"security.protocol": "TLS"}, "security.protocol 'TLS' is not one of"),
        ({"security.protocol": "SASL_SSL", "sasl.mechanism": "GSSAPI", "password": "hunter2"},
         "sasl.mechanism 'GSSAPI'"),
        ({"security.protocol": "SASL_SSL", "username": "u"}, "a username and a password"),
        ({"security.protocol": "SSL", "ssl.truststore.location": "/x.jks", "ssl.truststore.type": "JKS"},
         "cannot read a JKS truststore"),
        ({"security.protocol": "SSL", "ssl.ca.location": "/no/ca.pem", "password": "hunter2"},
         "/no/ca.pem does not exist"),
    ],
)  # fmt: skip
def test_what_cannot_work_is_named_without_the_secret(values: dict[str, str], expected: str) -> None:
    with pytest.raises(KafkaPropertiesError, match=expected) as raised:
        kafka_properties(values)
    assert "hunter2" not in str(raised.value)


def test_an_unreadable_file_is_named(tmp_path: Path) -> None:
    with pytest.raises(KafkaPropertiesError, match=r"cannot read the Kafka client properties .*missing"):
        load_kafka_properties(str(tmp_path / "missing.properties"))
