"""Rules a VirtualService can never reach (IST0130) and matches it never uses (IST0131).

Istio reports these as validation warnings; ``istioctl analyze`` gives them
their codes. Per list (``http``, ``tcp``, ``tls``, each numbered on its own):

1. A rule after a rule without matches is unreachable: that earlier rule
   takes everything ("only the last rule can have no matches", "route
   without matches defined before").
2. A match equal to one of an earlier rule (an HTTP match's ``name`` aside)
   is ineffective (IST0131); a rule whose every match is, is unreachable
   ("all matches used by prior rules").
3. HTTP only: a ``uri.prefix`` match covered by an earlier prefix match
   with the same port, method (absent: ``exact:GET``), authority, headers,
   query parameters and withheld headers is ineffective (IST0131, "of prefix").

A rule is named by its ``name`` in quotes, else ``#index``; a match likewise.
"""

from __future__ import annotations

from collections.abc import Hashable, Iterator, Sequence
from dataclasses import dataclass, replace

from translators.mesh.analysis import messages as msg
from translators.mesh.model.routing import HttpMatch, NamedMatch, StringMatch, VirtualService
from translators.mesh.model.services import ObjectKey


def analyze_rules(vs: VirtualService, key: ObjectKey) -> Iterator[msg.Message]:
    """Every IST0130/IST0131 message about ``vs``'s ``http``, ``tcp`` and ``tls`` lists."""
    http = [
        ([replace(m, name="") for m in r.matches], _name(r.name, i), [m.name for m in r.matches])
        for i, r in enumerate(vs.http)
    ]
    yield from _list(key, "spec.http", http)
    yield from _prefix_overlaps(key, vs)
    for kind, routes in (("tcp", vs.tcp), ("tls", vs.tls)):
        rules = [(list(r.matches), f"#{i}", [""] * len(r.matches)) for i, r in enumerate(routes)]
        yield from _list(key, f"spec.{kind}", rules)


def _name(name: str, index: int) -> str:
    return msg.quote(name) if name else f"#{index}"


_Rule = tuple[Sequence[Hashable], str, Sequence[str]]
"""A rule's matches (comparable), its name for messages, and its matches' names."""


def _list(key: ObjectKey, field: str, rules: Sequence[_Rule]) -> Iterator[msg.Message]:
    seen: dict[Hashable, str] = {}
    catch_all = -1
    for n, (matches, rule, match_names) in enumerate(rules):
        where = f"{field}[{n}]"
        if not matches:
            if catch_all >= 0:
                yield msg.VIRTUAL_SERVICE_UNREACHABLE_RULE(
                    key, f"#{n}", "only the last rule can have no matches", field=where
                )
            catch_all = n
            continue
        if catch_all >= 0:
            yield msg.VIRTUAL_SERVICE_UNREACHABLE_RULE(
                key, rule, "route without matches defined before", field=where
            )
            continue
        duplicates = 0
        for m, (match, match_name) in enumerate(zip(matches, match_names, strict=True)):
            earlier = seen.get(match)
            if earlier is None:
                seen[match] = rule
                continue
            duplicates += 1
            yield msg.VIRTUAL_SERVICE_INEFFECTIVE_MATCH(
                key, rule, _name(match_name, m), earlier, field=f"{where}.match[{m}]"
            )
        if duplicates == len(matches):
            yield msg.VIRTUAL_SERVICE_UNREACHABLE_RULE(
                key, rule, "all matches used by prior rules", field=where
            )


@dataclass(frozen=True, slots=True)
class _Prefix:
    rule: str
    match: str
    field: str
    prefix: str
    port: int | None
    method: str
    authority: str
    headers: dict[str, str]
    query: dict[str, str]
    without: dict[str, str]

    def covers(self, later: _Prefix) -> bool:
        return (
            later.prefix.startswith(self.prefix)
            and self.port == later.port
            and self.method.startswith(later.method)
            and self.authority.startswith(later.authority)
            and _map_covers(self.headers, later.headers)
            and _map_covers(self.query, later.query)
            and _map_covers(self.without, later.without)
        )


def _map_covers(a: dict[str, str], b: dict[str, str]) -> bool:
    return len(a) == len(b) and all(k in b and v.startswith(b[k]) for k, v in a.items())


def _text(match: StringMatch | None, default: str = "") -> str:
    return f"{match.kind.value}:{match.value}" if match is not None else default


def _texts(named: tuple[NamedMatch, ...]) -> dict[str, str]:
    return {name: _text(m) for name, m in named}


def _prefix_overlaps(key: ObjectKey, vs: VirtualService) -> Iterator[msg.Message]:
    found: list[_Prefix] = []
    seen: set[HttpMatch] = set()
    for n, route in enumerate(vs.http):
        for m, match in enumerate(route.matches):
            bare = replace(match, name="")
            if bare in seen:
                continue  # a duplicate: reported by _list
            seen.add(bare)
            if match.uri is None or match.uri.kind.value != "prefix":
                continue
            found.append(
                _Prefix(
                    _name(route.name, n),
                    _name(match.name, m),
                    f"spec.http[{n}].match[{m}]",
                    match.uri.value,
                    match.port,
                    _text(match.method, "exact:GET"),
                    _text(match.authority),
                    _texts(match.headers),
                    _texts(match.query_params),
                    _texts(match.without_headers),
                )
            )
    for i, later in enumerate(found):
        for earlier in found[:i]:
            if earlier.prefix != later.prefix and earlier.covers(later):
                yield msg.VIRTUAL_SERVICE_INEFFECTIVE_MATCH(
                    key,
                    later.rule,
                    f"{later.match} of prefix {later.prefix}",
                    f"{earlier.match} of prefix {earlier.prefix} on {earlier.rule}",
                    field=later.field,
                )
