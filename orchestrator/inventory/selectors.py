"""``--limit`` selectors: a small boolean language over hosts. Pure, no I/O.

Grammar (keywords ignore case; ``not`` binds tighter than ``and``, ``and`` tighter than ``or``)::

    selector := or
    or       := and ("or" and)*
    and      := unary ("and" unary)*
    unary    := "not" unary | "(" or ")" | term
    term     := role:ROLE | tag:KEY | tag:KEY=GLOB | group:GLOB | name:GLOB | address:GLOB | GLOB

A bare ``GLOB`` is a name glob.  Globs use ``*``, ``?`` and ``[...]`` and ignore case, as Windows
compares names.  A term is one word: it ends at whitespace or a parenthesis.

An expression is parsed once (:func:`parse_selector`) into an immutable tree whose nodes have
``matches(host)``; ``str()`` renders the tree back as a canonical expression that parses to an
equal tree.  Trees also combine with ``&``, ``|`` and ``~``.
"""

from __future__ import annotations

import fnmatch
import functools
import re
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import ClassVar

from orchestrator.errors import SelectorError
from orchestrator.inventory.models import TAG_KEY_PATTERN, Host, Role

KEYWORDS = frozenset({"and", "or", "not"})
_TOKEN = re.compile(r"[()]|[^\s()]+")


# --- the tree --------------------------------------------------------------------------------------


class Selector(ABC):
    """A parsed selector. ``precedence`` says how tightly a node binds when rendered."""

    precedence: ClassVar[int]

    @abstractmethod
    def matches(self, host: Host) -> bool: ...

    def __and__(self, other: Selector) -> Selector:
        return And(self, other)

    def __or__(self, other: Selector) -> Selector:
        return Or(self, other)

    def __invert__(self) -> Selector:
        return Not(self)


def _check_word(value: str, what: str) -> None:
    """Values must be one non-empty word so that every tree renders to an expression that parses."""
    if _TOKEN.fullmatch(value) is None or value in {"(", ")"}:
        raise ValueError(f"{what} must be one word without spaces or parentheses, not {value!r}")


@functools.lru_cache(maxsize=1024)
def _compiled_glob(pattern: str) -> re.Pattern[str]:
    return re.compile(fnmatch.translate(pattern), re.IGNORECASE)


def glob_matches(pattern: str, value: str) -> bool:
    """Shell-style glob match over the whole value, ignoring case."""
    return _compiled_glob(pattern).match(value) is not None


@dataclass(frozen=True)
class RoleTerm(Selector):
    role: Role
    precedence: ClassVar[int] = 4

    def matches(self, host: Host) -> bool:
        return host.role is self.role

    def __str__(self) -> str:
        return f"role:{self.role.value}"


@dataclass(frozen=True)
class TagTerm(Selector):
    """``tag:KEY`` (the host has the tag) or ``tag:KEY=GLOB`` (and its value matches)."""

    key: str
    value: str | None = None
    precedence: ClassVar[int] = 4

    def __post_init__(self) -> None:
        if re.fullmatch(TAG_KEY_PATTERN, self.key) is None:
            raise ValueError(f"invalid tag key {self.key!r}")
        if self.value is not None:
            _check_word(self.value, "a tag value")

    def matches(self, host: Host) -> bool:
        actual = host.tag(self.key)
        return actual is not None and (self.value is None or glob_matches(self.value, actual))

    def __str__(self) -> str:
        return f"tag:{self.key}" if self.value is None else f"tag:{self.key}={self.value}"


@dataclass(frozen=True)
class _GlobTerm(Selector):
    """A glob over some text of the host; subclasses say which text and which prefix."""

    pattern: str
    precedence: ClassVar[int] = 4
    prefix: ClassVar[str]

    def __post_init__(self) -> None:
        _check_word(self.pattern, f"a {self.prefix}: pattern")

    @abstractmethod
    def candidates(self, host: Host) -> Iterable[str]: ...

    def matches(self, host: Host) -> bool:
        return any(glob_matches(self.pattern, text) for text in self.candidates(host))

    def __str__(self) -> str:
        return f"{self.prefix}:{self.pattern}"


@dataclass(frozen=True)
class NameTerm(_GlobTerm):
    prefix: ClassVar[str] = "name"

    def candidates(self, host: Host) -> Iterable[str]:
        return (host.name,)

    def __str__(self) -> str:
        # Written bare, as users type it, unless a bare word would read as a keyword or a prefix.
        bare = ":" not in self.pattern and self.pattern.casefold() not in KEYWORDS
        return self.pattern if bare else super().__str__()


@dataclass(frozen=True)
class GroupTerm(_GlobTerm):
    prefix: ClassVar[str] = "group"

    def candidates(self, host: Host) -> Iterable[str]:
        return host.groups


@dataclass(frozen=True)
class AddressTerm(_GlobTerm):
    prefix: ClassVar[str] = "address"

    def candidates(self, host: Host) -> Iterable[str]:
        return (host.address,)


def _render(node: Selector, at_least: int) -> str:
    """``node`` as an operand of an operator that needs ``at_least`` binding: parenthesised if weaker."""
    return str(node) if node.precedence >= at_least else f"({node})"


@dataclass(frozen=True)
class Not(Selector):
    operand: Selector
    precedence: ClassVar[int] = 3

    def matches(self, host: Host) -> bool:
        return not self.operand.matches(host)

    def __str__(self) -> str:
        return f"not {_render(self.operand, self.precedence)}"


@dataclass(frozen=True)
class _Binary(Selector):
    left: Selector
    right: Selector
    keyword: ClassVar[str]

    def __str__(self) -> str:
        # Operators group to the left, so a right operand of equal strength keeps its parentheses:
        # that way the rendering parses back to this very tree.
        left = _render(self.left, self.precedence)
        right = _render(self.right, self.precedence + 1)
        return f"{left} {self.keyword} {right}"


@dataclass(frozen=True)
class And(_Binary):
    precedence: ClassVar[int] = 2
    keyword: ClassVar[str] = "and"

    def matches(self, host: Host) -> bool:
        return self.left.matches(host) and self.right.matches(host)


@dataclass(frozen=True)
class Or(_Binary):
    precedence: ClassVar[int] = 1
    keyword: ClassVar[str] = "or"

    def matches(self, host: Host) -> bool:
        return self.left.matches(host) or self.right.matches(host)


def select(hosts: Iterable[Host], selector: Selector | None) -> tuple[Host, ...]:
    """The hosts ``selector`` matches, in their given order; all of them when ``selector`` is None."""
    return tuple(host for host in hosts if selector is None or selector.matches(host))


# --- parsing ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Token:
    text: str
    column: int  # 1-based, like SelectorError.column

    @property
    def keyword(self) -> str | None:
        folded = self.text.casefold()
        return folded if folded in KEYWORDS else None


def parse_selector(expression: str) -> Selector:
    """Parse a ``--limit`` expression; raises :class:`SelectorError` pointing at the offending token."""
    return _Parser(expression).parse()


class _Parser:
    """Recursive descent, one method per grammar rule."""

    def __init__(self, expression: str):
        self._expression = expression
        self._tokens = [_Token(m.group(), m.start() + 1) for m in _TOKEN.finditer(expression)]
        self._next = 0

    def parse(self) -> Selector:
        if not self._tokens:
            raise self._error("empty selector; expected a term such as role:endpoint", 1)
        selector = self._or()
        extra = self._peek()
        if extra is not None:
            raise self._error(self._unexpected(extra, "'and', 'or' or the end of the selector"), extra.column)
        return selector

    def _or(self) -> Selector:
        node = self._and()
        while self._take_keyword("or"):
            node = Or(node, self._and())
        return node

    def _and(self) -> Selector:
        node = self._unary()
        while self._take_keyword("and"):
            node = And(node, self._unary())
        return node

    def _unary(self) -> Selector:
        token = self._take()
        if token is None:
            previous = self._tokens[self._next - 1]
            raise self._error(f"expected a term after {previous.text!r}", previous.column)
        if token.keyword == "not":
            return Not(self._unary())
        if token.text == "(":
            return self._group(token)
        if token.text == ")" or token.keyword:
            raise self._error(f"expected a term such as role:endpoint, found {token.text!r}", token.column)
        return self._term(token)

    def _group(self, opening: _Token) -> Selector:
        inner = self._or()
        closing = self._take()
        if closing is None:
            raise self._error("unbalanced '(': expected ')' to close it", opening.column)
        if closing.text != ")":
            raise self._error(self._unexpected(closing, "'and', 'or' or ')'"), closing.column)
        return inner

    def _term(self, token: _Token) -> Selector:
        prefix, colon, value = token.text.partition(":")
        if not colon:
            return NameTerm(token.text)
        build = _TERM_BUILDERS.get(prefix.casefold())
        if build is None:
            raise self._error(
                f"unknown selector prefix {prefix + ':'!r}; expected one of {_PREFIX_LIST}", token.column
            )
        if not value:
            raise self._error(f"empty value after {prefix + ':'!r}", token.column)
        try:
            return build(value)
        except ValueError as exc:
            raise self._error(str(exc), token.column) from None

    def _peek(self) -> _Token | None:
        return self._tokens[self._next] if self._next < len(self._tokens) else None

    def _take(self) -> _Token | None:
        token = self._peek()
        if token is not None:
            self._next += 1
        return token

    def _take_keyword(self, keyword: str) -> bool:
        token = self._peek()
        if token is not None and token.keyword == keyword:
            self._next += 1
            return True
        return False

    @staticmethod
    def _unexpected(token: _Token, expected: str) -> str:
        if token.text == ")":
            return "unbalanced ')': no '(' to close"
        return f"unexpected {token.text!r}; expected {expected}"

    def _error(self, message: str, column: int) -> SelectorError:
        return SelectorError(message, expression=self._expression, column=column)


def _role_term(value: str) -> Selector:
    try:
        return RoleTerm(Role(value.casefold()))
    except ValueError:
        valid = ", ".join(role.value for role in Role)
        raise ValueError(f"unknown role {value!r}; expected one of {valid}") from None


def _tag_term(value: str) -> Selector:
    key, equals, pattern = value.partition("=")
    if not key:
        raise ValueError("empty tag key; expected tag:KEY or tag:KEY=VALUE")
    if re.fullmatch(TAG_KEY_PATTERN, key) is None:
        raise ValueError(f"invalid tag key {key!r}: use letters, digits, '.', '-' and '_'")
    if equals and not pattern:
        raise ValueError(f"empty tag value after '='; write tag:{key} to match any value")
    return TagTerm(key, pattern if equals else None)


_TERM_BUILDERS: dict[str, Callable[[str], Selector]] = {
    "role": _role_term,
    "tag": _tag_term,
    "group": GroupTerm,
    "name": NameTerm,
    "address": AddressTerm,
}
_PREFIX_LIST = ", ".join(f"{prefix}:" for prefix in _TERM_BUILDERS)


__all__ = [
    "KEYWORDS",
    "AddressTerm",
    "And",
    "GroupTerm",
    "NameTerm",
    "Not",
    "Or",
    "RoleTerm",
    "Selector",
    "TagTerm",
    "glob_matches",
    "parse_selector",
    "select",
]
