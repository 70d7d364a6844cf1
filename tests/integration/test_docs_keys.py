"""Every key's documented default is the one portier applies.

`portier -K` prints the key table; its default column is the default the
loader applies ("per protocol (...)" for keys whose default comes from the
protocol table). This test reads docs/configuration.md and docs/portier.ini.5
and checks, value by value (never as a substring), that:

- configuration.md's key reference is -K's output, row for row;
- every table of configuration.md headed by a key (`mode`, `policy`,
  `protocol`) marks as "(default)" exactly the row -K names, and the
  protocol table's "`alpn` default" / "`idle_timeout` default" columns give,
  protocol by protocol, what -K's per-protocol defaults say;
- a default stated in configuration.md's prose ("`curves` (default `V`)",
  "`V` (the default)" in a key's section) is -K's;
- portier.ini(5) has one entry per key, and the default that entry states
  ("Default: V.", "Default by protocol: ...", "V (the default)") is -K's.

So a renamed key, a re-defaulted key or a default edited in one place only
fails here, naming the key and both values.
"""

import os
import re

import harness

DOCS = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "docs")

# -K defaults that are a description, not a value, and how the man page says
# the same. A new descriptive default must be added here (the test says so).
DESCRIBED = {
    "the machine's name": "the machine's host name",
    "the cert file": "read from the cert file itself",
    "the control connection's local address": "the control connection's local address",
    "10000 per listener, none in [portier]": "10000 per listener, none in [portier]",
    "one second's worth of rate_per_ip, at least 1":
        "one second's worth of the rate, at least 1",
}


def read(name):
    with open(os.path.join(DOCS, name)) as f:
        return f.read()


def cells(row):
    """The cells of a markdown table row (a `\\|` inside a cell is not a separator)."""
    parts = re.split(r"(?<!\\)\|", row.strip())
    assert len(parts) >= 3 and parts[0] == "" and parts[-1] == "", "not a table row: %r" % row
    return [p.strip() for p in parts[1:-1]]


def per_protocol(text):
    """'tcp none, http http/1.1' -> {'tcp': 'none', 'http': 'http/1.1'}"""
    out = {}
    for item in text.split(","):
        words = item.split()
        assert len(words) == 2, "per-protocol item %r is not 'PROTOCOL VALUE'" % item
        out[words[0]] = words[1]
    return out


def key_table():
    """-K's rows: (key -> default), where a per-protocol default is a dict,
    and the raw -K text."""
    cp = harness.run([harness.PORTIER_BIN, "-K"], check=True)
    keys = {}
    for line in cp.out.splitlines():
        if not line.startswith("| `"):
            continue
        c = cells(line)
        m = re.fullmatch(r"`([a-z0-9_]+)`", c[0])
        assert m, line
        default = c[3]
        pm = re.fullmatch(r"per protocol \((.*)\)", default)
        keys[m.group(1)] = per_protocol(pm.group(1)) if pm else default
    assert len(keys) >= 20, "-K printed only %d keys:\n%s" % (len(keys), cp.out)
    return keys, cp.out


def bare(v):
    """A documented value without markdown backticks or a trailing remark:
    '`http/1.1`' -> 'http/1.1', "30m (RFC 9051's ...)" -> '30m'."""
    v = re.sub(r"\s*\(.*\)$", "", v.strip())
    return v.strip("`")


# --------------------------------------------------------------------------
# configuration.md

def test_configuration_md_key_reference_is_the_key_table():
    _, out = key_table()
    md = read("configuration.md")
    m = re.search(r"<!-- keys:begin -->\n(.*?)<!-- keys:end -->", md, re.S)
    assert m, "configuration.md has no keys:begin/end block"
    assert m.group(1) == out, ("configuration.md's key reference differs from portier -K; "
                               "regenerate it with portier -K")


def md_tables(md):
    """(line number, header cells, body rows as cell lists) of each table."""
    lines = md.splitlines()
    i = 0
    while i < len(lines):
        if lines[i].startswith("|") and i + 1 < len(lines) and re.match(r"\|[-|]+\|$", lines[i + 1]):
            head = cells(lines[i])
            rows = []
            j = i + 2
            while j < len(lines) and lines[j].startswith("|"):
                rows.append(cells(lines[j]))
                j += 1
            yield i + 1, head, rows
            i = j
        else:
            i += 1


def test_configuration_md_tables_mark_the_applied_default():
    keys, _ = key_table()
    md = read("configuration.md")
    seen = set()
    for lineno, head, rows in md_tables(md):
        m = re.fullmatch(r"`([a-z0-9_]+)`", head[0])
        if not m or m.group(1) not in keys:
            continue
        key = m.group(1)
        seen.add(key)
        marked = [bare(r[0]) for r in rows if re.search(r"\(default\)$", r[0])]
        assert marked == [keys[key]], (
            "configuration.md:%d: the `%s` table marks %r as (default); portier -K says %r"
            % (lineno, key, marked, keys[key]))
        # Columns headed "`other_key` default" give other_key's default per row.
        for col, h in enumerate(head[1:], 1):
            cm = re.fullmatch(r"`([a-z0-9_]+)` default", h)
            if not cm:
                continue
            other = cm.group(1)
            assert other in keys, "configuration.md:%d: column for unknown key %r" % (lineno, other)
            want = keys[other]
            assert isinstance(want, dict), (
                "configuration.md:%d: `%s` has a per-%s column, but portier -K gives it "
                "one default, %r" % (lineno, other, key, want))
            got = {bare(r[0]): bare(r[col]) for r in rows}
            assert got == want, (
                "configuration.md:%d: the `%s` default column says %r; portier -K says %r"
                % (lineno, other, got, want))
            seen.add(other)
    # The tables this test knows of must still be there to be checked.
    assert {"mode", "policy", "protocol", "alpn", "idle_timeout"} <= seen, seen


def md_sections(md):
    """(heading, text) of each ## section, tables left out."""
    parts = re.split(r"^(## .*)$", md, flags=re.M)
    for i in range(1, len(parts), 2):
        text = "\n".join(l for l in parts[i + 1].splitlines() if not l.startswith("|"))
        yield parts[i], text


def test_configuration_md_prose_defaults():
    keys, _ = key_table()
    md = read("configuration.md")
    checked = []
    for heading, text in md_sections(md):
        # "`curves` (default `X25519:P-256:P-384`)"
        for m in re.finditer(r"`([a-z0-9_]+)` \(default `([^`]+)`\)", text):
            key, v = m.group(1), m.group(2)
            assert key in keys, "configuration.md %s: default given for unknown key %r" % (
                heading, key)
            assert v == keys[key], "configuration.md %s: `%s` (default `%s`); portier -K says %r" \
                % (heading, key, v, keys[key])
            checked.append(key)
        # "- `syslog` (the default): ..." in the section of the key it names first
        for m in re.finditer(r"`([^`]+)` \((?:the )?default\)", text):
            key = next((k for k in re.findall(r"`([a-z0-9_]+)`", text) if k in keys), None)
            assert key is not None, "configuration.md %s: %r is called the default, but the " \
                "section names no key" % (heading, m.group(0))
            assert m.group(1) == keys[key], (
                "configuration.md %s: `%s` is called the default of `%s`; portier -K says %r"
                % (heading, m.group(1), key, keys[key]))
            checked.append(key)
    assert {"curves", "log"} <= set(checked), checked


# --------------------------------------------------------------------------
# portier.ini(5)

def roff_text(lines):
    """The words of roff lines: font macros' arguments joined, escapes undone."""
    out = []
    for line in lines:
        if line.startswith(".\\\""):
            continue
        m = re.match(r"\.(B|I|BR|BI|IB|IR|RI|RB)(?:\s+(.*))?$", line)
        if m:
            args = re.findall(r'"([^"]*)"|(\S+)', m.group(2) or "")
            args = [a or b for a, b in args]
            sep = " " if m.group(1) in ("B", "I") else ""
            out.append(sep.join(args))
        elif line.startswith("."):
            continue
        else:
            out.append(line)
    text = " ".join(out)
    text = re.sub(r"\\f[BIRP]", "", text)
    text = text.replace("\\-", "-").replace("\\&", "").replace("\\(dq", '"').replace("\\(bu", "")
    return re.sub(r"\s+", " ", text).strip()


def man_entries():
    """{key: text of its .TP entry} from portier.ini(5)'s KEYS section; each
    key must have exactly one entry whose tag names it whole."""
    lines = read("portier.ini.5").splitlines()
    entries = {}
    for i, line in enumerate(lines):
        if line != ".TP" or i + 1 >= len(lines):
            continue
        m = re.match(r'\.B[IR]? (?:"([a-z0-9_]+) = "|([a-z0-9_]+) " = ")', lines[i + 1])
        if not m:
            continue
        key = m.group(1) or m.group(2)
        assert key not in entries, "portier.ini.5 has two entries for %s" % key
        j = i + 2
        while j < len(lines) and not re.match(r"\.(TP|SS|SH)\b", lines[j]):
            j += 1
        entries[key] = roff_text(lines[i + 2:j])
    return entries


def man_default(text):
    """What a man page entry gives as its default: a string, a per-protocol
    dict, or None."""
    m = re.search(r"Default by protocol: (.*?)\.(?:\s|$)", text)
    if m:
        out = {}
        # "http/1.1 for http; smtp, imap, pop3, ldap, ftp for those; none for tcp"
        if " for " in m.group(1):
            for clause in m.group(1).split(";"):
                vals, _, protos = clause.strip().rpartition(" for ")
                vals = [v.strip() for v in vals.split(",")]
                if protos.strip() == "those":
                    out.update({v: v for v in vals})
                else:
                    assert len(vals) == 1, clause
                    out.update({p.strip(): vals[0] for p in protos.split(",")})
            return out
        return per_protocol(m.group(1))       # "tcp 5m, http 60s, ..."
    m = re.search(r"Default: (.*?)\.(?:\s|$)", text)
    if m:
        return m.group(1)
    m = re.search(r"(\S+) \(the default\)", text)
    if m:
        return m.group(1)
    return None


def test_man_page_defaults_are_the_applied_defaults():
    keys, _ = key_table()
    entries = man_entries()
    assert sorted(entries) == sorted(keys), (
        "portier.ini.5's key entries differ from portier -K: missing %s, unknown %s"
        % (sorted(set(keys) - set(entries)), sorted(set(entries) - set(keys))))
    wrong = []
    for key, want in keys.items():
        got = man_default(entries[key])
        if isinstance(want, dict):
            ok = got == want
        elif want == "(none)" or want.startswith("(required"):
            # No default: the man page says none, or says the key is required.
            ok = (got is not None and bare(got) == "none") or \
                 (got is None and re.search(r"\brequired\b", entries[key], re.I) is not None)
        elif " " in want:
            assert want in DESCRIBED, ("portier -K gives %s the descriptive default %r: add "
                                       "how portier.ini.5 words it to DESCRIBED" % (key, want))
            ok = got == DESCRIBED[want]
        else:
            ok = got is not None and bare(got) == want
        if not ok:
            wrong.append("%s: portier.ini.5 says %r, portier -K says %r" % (key, got, want))
    assert not wrong, "\n".join(wrong)
