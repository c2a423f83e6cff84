"""Keys files in the formats people keep them in; secrets never shown."""

from __future__ import annotations

import json
import os
import pickle
import warnings

import pytest

from engine.errors import SourceError
from engine.data.sources.credentials import (
    Credentials,
    KeysFileWarning,
    load_credentials,
    parse_keys_text,
    read_keys_file,
)

KEY = "PKABCDEFGHIJ1234"
SECRET = "s3cr3tVALUEthatMUSTnotLEAK0123456789"


def _write(tmp_path, text, mode=0o600, name="keys.txt"):
    p = tmp_path / name
    p.write_text(text)
    os.chmod(p, mode)
    return p


@pytest.mark.parametrize("text", [
    f"APCA_API_KEY_ID={KEY}\nAPCA_API_SECRET_KEY={SECRET}\n",
    f"export APCA_API_KEY_ID='{KEY}'\nexport APCA_API_SECRET_KEY=\"{SECRET}\"\n",
    f"# paper account\n\nALPACA_API_KEY={KEY}\nALPACA_SECRET_KEY={SECRET}  # rotated monthly\n",
    f"API_KEY = {KEY}\r\nSECRET_KEY = {SECRET}\r\n",
    f"key_id: {KEY}\nsecret: {SECRET}\n",
    f"APCA_API_BASE_URL=https://paper-api.alpaca.markets\nAPCA_API_KEY_ID={KEY}\nAPCA_API_SECRET_KEY={SECRET}\n",
    f"{KEY}\n{SECRET}\n",
    f"\ufeff{KEY}\n\n{SECRET}",
    json.dumps({"APCA_API_KEY_ID": KEY, "APCA_API_SECRET_KEY": SECRET}),
    json.dumps({"key_id": KEY, "secret_key": SECRET}, indent=2),
    json.dumps({"alpaca": {"api_key": KEY, "api_secret": SECRET}}),
])
def test_accepted_formats(tmp_path, text):
    creds = read_keys_file(_write(tmp_path, text))
    assert (creds.key_id, creds.secret) == (KEY, SECRET)


@pytest.mark.parametrize("text, line", [
    (f"APCA_API_KEY_ID={KEY}\nAPCA_API_SECRET_KEY='{SECRET}\n", 2),      # unbalanced quote
    (f"APCA_API_KEY_ID={KEY}\n{SECRET}\n", 2),                           # bare among KEY=VALUE
    (f"{KEY}\n{SECRET}\nthird-line\n", 3),                               # three bare lines
    (f"APCA_API_KEY_ID={KEY}\nAPCA_API_SECRET_KEY=two {SECRET} words\n", 2),
    (f"{KEY}\nthis is {SECRET} prose\n", 2),
    ('{\n  "APCA_API_KEY_ID": "' + KEY + '",\n  "APCA_API_SECRET_KEY": "' + SECRET + '"\n  oops\n}', 4),
])
def test_unparseable_file_names_line_never_content(tmp_path, text, line):
    p = _write(tmp_path, text)
    with pytest.raises(SourceError) as ei:
        read_keys_file(p)
    msg = str(ei.value)
    assert f"line {line}" in msg and str(p) in msg
    assert SECRET not in msg and KEY not in msg


def test_missing_secret_or_key_says_what_to_write(tmp_path):
    with pytest.raises(SourceError, match="no secret.*APCA_API_SECRET_KEY"):
        read_keys_file(_write(tmp_path, f"APCA_API_KEY_ID={KEY}\n"))
    with pytest.raises(SourceError, match="no key id.*APCA_API_KEY_ID"):
        read_keys_file(_write(tmp_path, f"APCA_API_SECRET_KEY={SECRET}\n"))
    with pytest.raises(SourceError, match="exactly two bare lines"):
        read_keys_file(_write(tmp_path, f"{KEY}\n"))


def test_missing_file_and_directory(tmp_path):
    with pytest.raises(SourceError, match="does not exist"):
        read_keys_file(tmp_path / "nope.txt")
    with pytest.raises(SourceError, match="is a directory"):
        read_keys_file(tmp_path)


def test_binary_file_refused_by_line(tmp_path):
    p = tmp_path / "k.bin"
    p.write_bytes(b"APCA_API_KEY_ID=abc\n\xff\xfe\x00garbage\n")
    os.chmod(p, 0o600)
    with pytest.raises(SourceError, match="line 2: not UTF-8"):
        read_keys_file(p)


def test_group_readable_file_warns(tmp_path):
    p = _write(tmp_path, f"{KEY}\n{SECRET}\n", mode=0o644)
    with pytest.warns(KeysFileWarning, match="chmod 600"):
        read_keys_file(p)
    p2 = _write(tmp_path, f"{KEY}\n{SECRET}\n", mode=0o600, name="private.txt")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        read_keys_file(p2)


def test_repr_str_format_never_show_secret():
    creds = Credentials(KEY, SECRET, source="keys file x")
    for shown in (repr(creds), str(creds), f"{creds}", f"{creds!r}", "%s %r" % (creds, creds),
                  repr([creds]), repr({"c": creds})):
        assert SECRET not in shown
        assert KEY not in shown  # only its last characters
        assert "hidden" in shown
    assert "1234" in repr(creds)
    with pytest.raises(TypeError):
        pickle.dumps(creds)


def test_env_resolution(tmp_path):
    p = _write(tmp_path, f"{KEY}\n{SECRET}\n")
    assert load_credentials({}) is None
    c = load_credentials({"APCA_API_KEY_ID": KEY, "APCA_API_SECRET_KEY": SECRET})
    assert (c.key_id, c.secret) == (KEY, SECRET) and "APCA_API_KEY_ID" in c.source
    # the keys file named for foldgate wins over the generic variables
    c = load_credentials({"ALPACA_KEYS_FILE": str(p), "APCA_API_KEY_ID": "OTHER",
                          "APCA_API_SECRET_KEY": "OTHER"})
    assert c.key_id == KEY and str(p) in c.source
    with pytest.raises(SourceError, match="APCA_API_SECRET_KEY is not set"):
        load_credentials({"APCA_API_KEY_ID": KEY})
    with pytest.raises(SourceError, match="does not exist"):
        load_credentials({"ALPACA_KEYS_FILE": str(tmp_path / "missing")})


def test_parse_keys_text_direct():
    c = parse_keys_text(f"APCA_API_KEY_ID={KEY}\nAPCA_API_SECRET_KEY={SECRET}")
    assert c.secret == SECRET
