#!/usr/bin/env python3
"""Build Ward's conformance corpus from Sensu Go's public documentation.

Usage:
    scripts/sensu-docs-corpus.py GIT_DIR [--version 6.14] [--out conformance/sensu-docs]

GIT_DIR is a clone (bare or not) of https://github.com/sensu/sensu-docs. The script reads
the tree at HEAD through `git` (no work tree needed), walks the markdown of
content/sensu-go/<version>/ (the newest 6.x by default) and writes:

  resources/<Kind>/<nnn>.yml|json  every Sensu resource example, verbatim, one document
                                   per file (a YAML stream or concatenated JSON objects
                                   are split at document boundaries; the text of each
                                   document is not changed, apart from removing the
                                   indentation that a markdown list puts on a whole
                                   block). YAML files begin with a `# source:` line.
  resources/SOURCES.tsv            one row per example: file, type, api_version, format,
                                   origin (which kind of block it came from) and source
                                   (sensu/sensu-docs@<commit>:<path>:<line>).
  api/curl.jsonl                   every `curl` in the API reference (content/.../api/)
                                   that sends a body: method, path, url, body (verbatim),
                                   whether the body is JSON, the documented response
                                   status (from the "HTTP/1.1 201 Created" sentence
                                   after the example) and source.
  SOURCE                           the sensu-docs commit and content dir used.

Where examples come from (resources; the API reference is left to curl.jsonl):
  * `{{< code yml|yaml|json >}}` blocks (inside or outside `{{< language-toggle >}}`)
    and ``` fenced yml/yaml/json blocks: the whole block;
  * any other block (shell, text, ...): heredoc bodies (`cat << EOF | sensuctl create`)
    and `echo '...' | sensuctl create` strings; text blocks that are themselves a
    YAML or JSON document (command output shown as an example) are taken whole.
A document counts as a resource when it has top-level `type` and `spec` keys. Blocks that
mention both but are not whole resources (no top-level type or spec, elided with `...`,
JSON that does not parse) are skipped and counted in the summary, by reason.

Standard library only. The output is deterministic: the same commit gives the same files.
"""

import argparse
import collections
import json
import os
import re
import shlex
import shutil
import subprocess
import sys

CODE_OPEN = re.compile(r'^(\s*)\{\{<\s*code\s+([A-Za-z]*)\s*(?:"([^"]*)")?\s*>\}\}\s*$')
CODE_CLOSE = re.compile(r'^\s*\{\{<\s*/code\s*>\}\}\s*$')
FENCE = re.compile(r'^(\s*)```\s*([A-Za-z]*)\s*$')
TOP_KEY = re.compile(r'^([A-Za-z_][\w-]*)\s*:')
DOC_SEP = re.compile(r'^---\s*$')
HEREDOC = re.compile(r"<<-?\s*['\"]?(\w+)['\"]?")
ECHO_CREATE = re.compile(r"echo\s+'(.*?)'\s*\|\s*sensuctl\s+create", re.S)
ELIDED = re.compile(r"""(^\s*["']?\.\.\.["']?\s*:)|(^\s*#\s*\.\.\.)|(^\s*\[\.\.\.\]\s*$)|(^\s*-?\s*["']?\.\.\.["']?\s*,?\s*$)""")
HTTP_STATUS = re.compile(r'HTTP/1\.1\s+(\d{3})\s+([A-Za-z][A-Za-z ]*[A-Za-z])')


def git(gitdir, *args):
    return subprocess.run(['git', '--git-dir', gitdir, *args], check=True,
                          capture_output=True).stdout.decode('utf-8')


def blocks(lines):
    """Yields (lang, label, first_body_line_no (1-based), body_lines, end_index) per block."""
    i = 0
    n = len(lines)
    while i < n:
        m = CODE_OPEN.match(lines[i])
        f = FENCE.match(lines[i]) if not m else None
        if m or (f and f.group(2)):
            lang = (m.group(2) if m else f.group(2)).lower()
            label = (m.group(3) or '') if m else ''
            close = CODE_CLOSE if m else re.compile(r'^\s*```\s*$')
            j = i + 1
            while j < n and not close.match(lines[j]):
                j += 1
            yield lang, label, i + 2, lines[i + 1:j], j
            i = j + 1
        else:
            i += 1


def dedent(body):
    ind = [len(l) - len(l.lstrip(' ')) for l in body if l.strip()]
    k = min(ind) if ind else 0
    return [l[k:] for l in body]


def candidates(lang, label, start, body):
    """Yields (origin, format_hint, first_line_no, text) from one block."""
    body = dedent(body)
    if lang in ('yml', 'yaml', 'json') and not any(HEREDOC.search(l) for l in body) \
            and not ECHO_CREATE.search('\n'.join(body)):
        yield 'code-' + lang, 'json' if lang == 'json' else 'yml', start, body
        return
    # heredocs
    k = 0
    found = False
    while k < len(body):
        m = HEREDOC.search(body[k])
        if m:
            word = m.group(1)
            e = k + 1
            while e < len(body) and body[e].strip() != word:
                e += 1
            inner = dedent(body[k + 1:e])
            yield 'heredoc-' + lang, None, start + k + 1, inner
            found = True
            k = e + 1
        else:
            k += 1
    text = '\n'.join(body)
    for m in ECHO_CREATE.finditer(text):
        line = start + text[:m.start(1)].count('\n')
        inner = m.group(1).split('\n')
        yield 'echo-' + lang, None, line, inner
        found = True
    if not found and lang in ('text', 'plain', '') and body:
        first = next((l for l in body if l.strip()), '')
        if first.startswith(('{', '[', '---', 'type:', 'api_version:')):
            yield 'text-block', None, start, body


def split_yaml(lines, start):
    """Splits a YAML stream at `---` lines; yields (first_line_no, lines)."""
    cur, cur_start = [], start
    for idx, l in enumerate(lines):
        if DOC_SEP.match(l):
            if any(x.strip() and not x.lstrip().startswith('#') for x in cur):
                yield cur_start, cur
            cur, cur_start = [l], start + idx
        else:
            cur.append(l)
    if any(x.strip() and not x.lstrip().startswith('#') for x in cur):
        yield cur_start, cur


def top_keys(lines):
    keys = {}
    for l in lines:
        m = TOP_KEY.match(l)
        if m:
            keys[m.group(1)] = l[m.end():].strip()
    return keys


def unquote(v):
    v = v.split(' #')[0].strip()
    if len(v) >= 2 and v[0] == v[-1] and v[0] in '"\'':
        return v[1:-1]
    return v


def json_values(text):
    """Concatenated JSON values; yields (start_offset, end_offset, value). Raises ValueError."""
    dec = json.JSONDecoder()
    i = 0
    n = len(text)
    while True:
        while i < n and text[i].isspace():
            i += 1
        if i >= n:
            return
        v, e = dec.raw_decode(text, i)
        yield i, e, v
        i = e


def array_items(text, start):
    """The items of the JSON array at text[start]: yields (start, end, value)."""
    dec = json.JSONDecoder()
    i = start + 1
    while True:
        while i < len(text) and (text[i].isspace() or text[i] == ','):
            i += 1
        if text[i] == ']':
            return
        v, e = dec.raw_decode(text, i)
        yield i, e, v
        i = e


def is_resource_obj(v):
    return isinstance(v, dict) and 'type' in v and 'spec' in v


def mentions_resource(text):
    return bool(re.search(r'(^|\s|")type"?\s*:', text)) and bool(re.search(r'(^|\s|")spec"?\s*:', text))


def elided(lines):
    return any(ELIDED.search(l) for l in lines)


def extract_resources(origin, hint, line, body, out, skipped):
    text = '\n'.join(body)
    stripped = text.strip()
    if not stripped:
        return
    is_json = hint == 'json' or (hint is None and stripped[0] in '{[')
    if is_json:
        try:
            vals = list(json_values(text))
        except ValueError as e:
            if mentions_resource(text):
                skipped['JSON does not parse (%s)' % str(e).split(':')[0]].append((origin, line))
            return
        for s, e, v in vals:
            items = []
            if is_resource_obj(v):
                items = [(s, e, v)]
            elif isinstance(v, list) and v and all(is_resource_obj(x) for x in v):
                items = list(array_items(text, s))
            elif isinstance(v, (dict, list)) and mentions_resource(text[s:e]):
                if isinstance(v, dict) and ('type' in v or 'spec' in v):
                    skipped['JSON object without both top-level type and spec'].append((origin, line))
                continue
            for s2, e2, v2 in items:
                chunk = text[s2:e2]
                cl = line + text[:s2].count('\n')
                if elided(chunk.split('\n')):
                    skipped['elided with "..."'].append((origin, cl))
                    continue
                t = v2.get('type')
                if not isinstance(t, str) or not t:
                    skipped['type is not a string'].append((origin, cl))
                    continue
                api = v2.get('api_version', '')
                out.append(dict(type=t, api_version=api if isinstance(api, str) else '',
                                fmt='json', origin=origin, line=cl, text=chunk + '\n'))
        return
    for dstart, doc in split_yaml(body, line):
        keys = top_keys(doc)
        if 'type' in keys and 'spec' in keys:
            if elided(doc):
                skipped['elided with "..."'].append((origin, dstart))
                continue
            t = unquote(keys['type'])
            if not t:
                skipped['type is not a scalar'].append((origin, dstart))
                continue
            out.append(dict(type=t, api_version=unquote(keys.get('api_version', '')),
                            fmt='yml', origin=origin, line=dstart,
                            text='\n'.join(doc).rstrip('\n') + '\n'))
        elif ('type' in keys or 'spec' in keys) and mentions_resource('\n'.join(doc)) \
                and ('metadata' in keys or 'api_version' in keys):
            missing = 'spec' if 'type' in keys else 'type'
            skipped['YAML document without top-level %s' % missing].append((origin, dstart))


def strip_prefix(url):
    m = re.search(r'/api/', url)
    if m:
        return url[m.start():]
    m = re.match(r'^(?:\$\{?\w+\}?|https?://[^/]+)(/.*)?$', url)
    return (m.group(1) or '/') if m else url


def extract_curls(relpath, lines, commit, out):
    for lang, label, start, body, end in blocks(lines):
        text = '\n'.join(body)
        if 'curl' not in text:
            continue
        # status: the first "HTTP/1.1 NNN Text" after the block, before the next curl block
        status = None
        k = end + 1
        while k < len(lines) and k < end + 40:
            if 'curl ' in lines[k] or lines[k].startswith('#'):
                break
            m = HTTP_STATUS.search(lines[k])
            if m:
                status = (int(m.group(1)), m.group(2))
                break
            k += 1
        # commands: a line starting with `curl`, plus its continuation lines
        body_lines = dedent(body)
        idx = 0
        while idx < len(body_lines):
            if not body_lines[idx].lstrip().startswith('curl'):
                idx += 1
                continue
            cstart = idx
            cmd = [body_lines[idx]]
            in_quote = body_lines[idx].count("'") % 2 == 1
            while (body_lines[idx].rstrip().endswith('\\') or in_quote) and idx + 1 < len(body_lines):
                idx += 1
                cmd.append(body_lines[idx])
                if body_lines[idx].count("'") % 2 == 1:
                    in_quote = not in_quote
            idx += 1
            raw = '\n'.join(cmd)
            try:
                toks = shlex.split(re.sub(r'\\\n', ' ', raw), comments=False, posix=True)
            except ValueError:
                out.append(dict(skip='curl command does not tokenise', source=f'{relpath}:{start + cstart}'))
                continue
            method, data, url = None, None, None
            t = 1
            while t < len(toks):
                a = toks[t]
                if a in ('-X', '--request') and t + 1 < len(toks):
                    method = toks[t + 1]
                    t += 2
                    continue
                if a.startswith('-X') and len(a) > 2:
                    method = a[2:]
                elif a in ('-d', '--data', '--data-raw', '--data-binary', '--data-ascii') and t + 1 < len(toks):
                    data = toks[t + 1]
                    t += 2
                    continue
                elif a in ('-H', '--header', '-u', '--user', '-o', '--output', '-F', '--form', '--cacert', '--cert', '--key') and t + 1 < len(toks):
                    t += 2
                    continue
                elif not a.startswith('-') and url is None:
                    url = a
                t += 1
            if data is None:
                out.append(dict(nobody=True, method=(method or 'GET').upper()))
                continue
            try:
                json.loads(data)
                valid = True
            except ValueError:
                valid = False
            out.append(dict(
                method=(method or 'POST').upper(),
                path=strip_prefix(url or ''),
                url=url,
                body=data,
                body_is_json=valid,
                status=status[0] if status else None,
                status_text=status[1] if status else None,
                source=f'sensu/sensu-docs@{commit}:{relpath}:{start + cstart}',
            ))


def family(method, path):
    p = path.split('?')[0].strip('/').split('/')
    if p and p[0] == 'api':
        p = p[1:]
    g = 3 if p[:1] == ['enterprise'] else 2
    group = '/'.join(p[:g])
    rest = p[g:]
    if rest[:1] == ['namespaces'] and len(rest) >= 3:
        rest = rest[2:]
    return f'{method} {group} {rest[0] if rest else "(root)"}'


def main():
    ap = argparse.ArgumentParser(description=__doc__.split('\n')[1])
    ap.add_argument('gitdir')
    ap.add_argument('--version', help='content/sensu-go/<version> (default: newest 6.x)')
    ap.add_argument('--out', default=os.path.join(os.path.dirname(os.path.abspath(__file__)),
                                                  '..', 'conformance', 'sensu-docs'))
    a = ap.parse_args()
    commit = git(a.gitdir, 'rev-parse', 'HEAD').strip()
    if a.version is None:
        vs = [v for v in git(a.gitdir, 'ls-tree', '--name-only', 'HEAD:content/sensu-go/').split()
              if re.fullmatch(r'6\.\d+', v)]
        a.version = max(vs, key=lambda v: int(v.split('.')[1]))
    root = f'content/sensu-go/{a.version}/'
    paths = sorted(p for p in git(a.gitdir, 'ls-tree', '-r', '--name-only', 'HEAD', root).split('\n')
                   if p.endswith('.md'))

    resources, skipped, curls = [], collections.defaultdict(list), []
    blocks_seen = collections.Counter()
    for p in paths:
        lines = git(a.gitdir, 'show', f'HEAD:{p}').split('\n')
        if p.startswith(root + 'api/'):
            extract_curls(p, lines, commit, curls)
            continue
        for lang, label, start, body, _end in blocks(lines):
            blocks_seen[lang or '(none)'] += 1
            for origin, hint, line, cbody in candidates(lang, label, start, body):
                found = []
                sk = collections.defaultdict(list)
                extract_resources(origin, hint, line, cbody, found, sk)
                for r in found:
                    r['path'] = p
                resources.extend(found)
                for k, v in sk.items():
                    skipped[k].extend((p, o, l) for o, l in v)

    out = os.path.abspath(a.out)
    rdir = os.path.join(out, 'resources')
    keep = {'EXPECTED.tsv'}
    if os.path.isdir(rdir):
        for e in os.listdir(rdir):
            if e not in keep:
                full = os.path.join(rdir, e)
                shutil.rmtree(full) if os.path.isdir(full) else os.remove(full)
    os.makedirs(rdir, exist_ok=True)
    os.makedirs(os.path.join(out, 'api'), exist_ok=True)
    per_kind = collections.Counter()
    rows = ['file\ttype\tapi_version\tformat\torigin\tsource']
    for r in resources:
        kind = re.sub(r'[^A-Za-z0-9_.-]', '_', r['type'])
        per_kind[kind] += 1
        rel = f'{kind}/{per_kind[kind]:03d}.{r["fmt"]}'
        src = f'sensu/sensu-docs@{commit}:{r["path"]}:{r["line"]}'
        os.makedirs(os.path.join(rdir, kind), exist_ok=True)
        with open(os.path.join(rdir, rel), 'w', encoding='utf-8', newline='\n') as f:
            if r['fmt'] == 'yml':
                f.write(f'# source: {src}\n')
            f.write(r['text'])
        rows.append('\t'.join([rel, r['type'], r['api_version'], r['fmt'], r['origin'], src]))
    with open(os.path.join(rdir, 'SOURCES.tsv'), 'w', encoding='utf-8', newline='\n') as f:
        f.write('\n'.join(rows) + '\n')

    with_body = [c for c in curls if 'body' in c]
    with open(os.path.join(out, 'api', 'curl.jsonl'), 'w', encoding='utf-8', newline='\n') as f:
        for c in with_body:
            f.write(json.dumps(c, ensure_ascii=False, sort_keys=False) + '\n')
    with open(os.path.join(out, 'SOURCE'), 'w', encoding='utf-8', newline='\n') as f:
        f.write(f'repository: https://github.com/sensu/sensu-docs\ncommit: {commit}\ncontent: {root}\n')

    # summary
    w = sys.stdout.write
    w(f'sensu/sensu-docs@{commit} {root}: {len(paths)} markdown files\n')
    w('code blocks outside api/: ' + ', '.join(f'{k} {v}' for k, v in blocks_seen.most_common()) + '\n')
    w(f'\nresource examples: {len(resources)}\n')
    by_fmt = collections.Counter((r['type'], r['fmt']) for r in resources)
    for kind in sorted(per_kind, key=lambda k: (-per_kind[k], k)):
        apis = sorted({r['api_version'] or '(none)' for r in resources if r['type'] == kind})
        w(f'  {kind:28} {per_kind[kind]:4}  (yml {by_fmt[(kind, "yml")]}, json {by_fmt[(kind, "json")]}; '
          f'{", ".join(apis)})\n')
    by_origin = collections.Counter(r['origin'] for r in resources)
    w('  by origin: ' + ', '.join(f'{k} {v}' for k, v in by_origin.most_common()) + '\n')
    w(f'\nskipped (not whole resources): {sum(len(v) for v in skipped.values())}\n')
    for reason, where in sorted(skipped.items(), key=lambda kv: -len(kv[1])):
        w(f'  {len(where):4}  {reason}\n')
        for p, o, l in where[:3]:
            w(f'          e.g. {p}:{l} ({o})\n')
    nobody = [c for c in curls if c.get('nobody')]
    bad = [c for c in curls if 'skip' in c]
    w(f'\nAPI curl examples with a body: {len(with_body)} '
      f'(without a body, not recorded: {len(nobody)}; untokenisable: {len(bad)})\n')
    for c in bad:
        w(f'  untokenisable (unbalanced quotes, a shell would refuse it too): {c["source"]}\n')
    w('  by method: ' + ', '.join(f'{k} {v}' for k, v in
                                  sorted(collections.Counter(c['method'] for c in with_body).items())) + '\n')
    w(f'  documented status: {sum(1 for c in with_body if c["status"])}; '
      f'body not JSON: {sum(1 for c in with_body if not c["body_is_json"])}\n')
    fams = collections.Counter(family(c['method'], c['path']) for c in with_body)
    for f_, n in sorted(fams.items()):
        w(f'  {n:4}  {f_}\n')


if __name__ == '__main__':
    main()
