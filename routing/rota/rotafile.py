"""The rota file: staff, schedules and chains in one YAML file, checked whole before anything is
stored. Pure: `parse` and `check` take the text and what is already stored, and give a plan or
every problem with its line.

Scalars are read as the text written (`20:00` stays "20:00", `+31612345678` keeps its plus, `no`
stays "no"); the models convert them (`wait_seconds: 45` becomes 45). People and schedules are
referred to by name: names from the file, or of staff and schedules already stored.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, TypeVar

import yaml
from pydantic import BaseModel, ValidationError

from routing.chain.schemas import ChainCreate
from routing.rota.schemas import ScheduleCreate
from routing.staff.schemas import StaffCreate

Path = tuple[str | int, ...]
SECTIONS = ("staff", "schedules", "chains")
MAX_NODES = 100_000
MAX_DEPTH = 40
M = TypeVar("M", bound=BaseModel)


@dataclass(frozen=True, slots=True)
class Problem:
    line: int
    field: str
    message: str

    def render(self, file_name: str) -> str:
        """`FILE:LINE: path.to.field: message`."""
        where = f"{file_name}:{self.line}:"
        return f"{where} {self.field}: {self.message}" if self.field else f"{where} {self.message}"


@dataclass(frozen=True)
class Document:
    data: Any
    lines: Mapping[Path, int]

    def line(self, path: Path) -> int:
        """The line of `path`, or of its nearest parent written in the file."""
        for end in range(len(path), 0, -1):
            if path[:end] in self.lines:
                return self.lines[path[:end]]
        return 1


def dotted(path: Path) -> str:
    return ".".join(str(p) for p in path)


class _Builder:
    """YAML nodes to plain data, remembering the line of every key and list item."""

    def __init__(self) -> None:
        self.lines: dict[Path, int] = {}
        self.problems: list[Problem] = []
        self.nodes = 0

    def build(self, node: yaml.Node, path: Path) -> Any:
        self.nodes += 1
        if self.nodes > MAX_NODES or len(path) > MAX_DEPTH:
            raise _TooLarge(node.start_mark.line + 1)
        if isinstance(node, yaml.MappingNode):
            result: dict[str, Any] = {}
            for key_node, value_node in node.value:
                line = key_node.start_mark.line + 1
                if not isinstance(key_node, yaml.ScalarNode):
                    self.problems.append(Problem(line, dotted(path), "keys must be plain words"))
                    continue
                key = str(key_node.value)
                if key in result:
                    where = dotted((*path, key))
                    self.problems.append(Problem(line, where, "written twice in the same place"))
                    continue
                self.lines[(*path, key)] = line
                result[key] = self.build(value_node, (*path, key))
            return result
        if isinstance(node, yaml.SequenceNode):
            items = []
            for index, item in enumerate(node.value):
                self.lines[(*path, index)] = item.start_mark.line + 1
                items.append(self.build(item, (*path, index)))
            return items
        if node.tag == "tag:yaml.org,2002:null":
            return None
        return str(node.value)


class _TooLarge(Exception):
    def __init__(self, line: int) -> None:
        self.line = line


def parse(text: str) -> tuple[Document | None, list[Problem]]:
    try:
        node = yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        problem = " ".join(filter(None, (exc.context, exc.problem))) or str(exc)
        return None, [Problem(mark.line + 1 if mark else 1, "", f"not valid YAML: {problem}")]
    except yaml.YAMLError as exc:
        return None, [Problem(1, "", f"not valid YAML: {exc}")]
    if node is None:
        return None, [Problem(1, "", "the file is empty: give staff, schedules and chains")]
    builder = _Builder()
    try:
        data = builder.build(node, ())
    except _TooLarge as exc:
        return None, [Problem(exc.line, "", "too large or nested too deeply")]
    return Document(data, builder.lines), builder.problems


# --- checking -------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class StoredStaff:
    id: str
    name: str
    phone: str


@dataclass(frozen=True)
class Stored:
    """What the database holds that the file may refer to or update."""

    staff: Sequence[StoredStaff] = ()
    schedules: Mapping[str, str] = field(default_factory=dict)  # name -> id


@dataclass(frozen=True)
class StaffEntry:
    data: StaffCreate
    stored_id: str | None  # matched by phone number: updated, not created
    key: str  # how the plan refers to this person: the stored id, or `new:<index>`
    path: Path


@dataclass(frozen=True)
class ScheduleEntry:
    data: ScheduleCreate  # members are staff keys
    stored_id: str | None  # matched by name: its layers are replaced
    key: str
    path: Path


@dataclass(frozen=True)
class ChainEntry:
    data: ChainCreate  # targets are staff keys, schedules schedule keys
    path: Path


@dataclass
class Plan:
    staff: list[StaffEntry] = field(default_factory=list)
    schedules: list[ScheduleEntry] = field(default_factory=list)
    chains: list[ChainEntry] = field(default_factory=list)


def check(document: Document, stored: Stored) -> tuple[Plan, list[Problem]]:
    """Everything the file would do, and every problem with it (apply only when there are none)."""
    checker = _Checker(document, stored)
    sections = checker.sections()
    checker.staff(sections["staff"])
    checker.schedules(sections["schedules"])
    checker.chains(sections["chains"])
    return checker.plan, checker.problems


class _Checker:
    def __init__(self, document: Document, stored: Stored) -> None:
        self.doc = document
        self.stored = stored
        self.plan = Plan()
        self.problems: list[Problem] = []
        self.staff_keys: dict[str, list[str]] = {}
        self.schedule_keys: dict[str, str] = dict(stored.schedules)

    def problem(self, path: Path, message: str) -> None:
        self.problems.append(Problem(self.doc.line(path), dotted(path), message))

    def validate(self, model: type[M], raw: Any, path: Path) -> M | None:
        try:
            return model.model_validate(raw)
        except ValidationError as exc:
            for error in exc.errors():
                message = str(error["msg"]).removeprefix("Value error, ")
                self.problem((*path, *error["loc"]), message)
            return None

    def sections(self) -> dict[str, list[Any]]:
        data = self.doc.data
        found: dict[str, list[Any]] = {name: [] for name in SECTIONS}
        if not isinstance(data, dict):
            self.problem((), "the file must be a mapping with staff, schedules and chains")
            return found
        for key in data:
            if key not in SECTIONS:
                self.problem((key,), f"unknown section; the sections are {', '.join(SECTIONS)}")
        for name in SECTIONS:
            value = data.get(name)
            if isinstance(value, list):
                found[name] = value
            elif value is not None:
                self.problem((name,), "must be a list (one `- ` item per entry)")
        return found

    def _first(self, seen: dict[str, Path], value: str, path: Path, what: str) -> bool:
        """Remember `value`; if it was seen before, report `path` and say False."""
        if value in seen:
            line = self.doc.line(seen[value])
            self.problem(path, f"another {what} in this file (line {line}) has this too")
            return False
        seen[value] = path
        return True

    # --- staff ----------------------------------------------------------------------------

    def staff(self, items: list[Any]) -> None:
        by_phone: dict[str, list[StoredStaff]] = defaultdict(list)
        for person in self.stored.staff:
            by_phone[person.phone].append(person)
        current = {person.id: person.name for person in self.stored.staff}
        new: list[tuple[str, str]] = []
        names: dict[str, Path] = {}
        phones: dict[str, Path] = {}
        for index, raw in enumerate(items):
            path: Path = ("staff", index)
            data = self.validate(StaffCreate, raw, path)
            name = data.name if data else _text(raw, "name")
            if name is not None:
                self._first(names, name, (*path, "name"), "staff entry")
            key, stored_id = f"new:{index}", None
            if data is not None and self._first(
                phones, data.phone, (*path, "phone"), "staff entry"
            ):
                matches = by_phone.get(data.phone, [])
                if len(matches) > 1:
                    self.problem(
                        (*path, "phone"),
                        f"{len(matches)} stored staff members have this number: which to update?",
                    )
                elif matches:
                    key = stored_id = matches[0].id
                    current[stored_id] = data.name
            if data is not None:
                self.plan.staff.append(StaffEntry(data, stored_id, key, path))
            if name is not None and stored_id is None:
                new.append((name, key))
        keys: dict[str, list[str]] = defaultdict(list)
        for staff_id, name in current.items():
            keys[name].append(staff_id)
        for name, key in new:
            keys[name].append(key)
        self.staff_keys = dict(keys)

    def staff_ref(self, value: Any, path: Path) -> Any:
        if not isinstance(value, str):
            return value
        keys = self.staff_keys.get(value.strip(), [])
        if len(keys) == 1:
            return keys[0]
        if keys:
            self.problem(path, f"{len(keys)} staff members are named {value!r}: rename one")
        else:
            self.problem(path, f"no staff member named {value!r} in this file or stored")
        return "unknown"

    # --- schedules ------------------------------------------------------------------------

    def schedules(self, items: list[Any]) -> None:
        names: dict[str, Path] = {}
        for index, raw in enumerate(items):
            path: Path = ("schedules", index)
            resolved = self._members(raw, path)
            data = self.validate(ScheduleCreate, resolved, path)
            name = data.name if data else _text(raw, "name")
            if name is None or not self._first(names, name, (*path, "name"), "schedule"):
                continue
            stored_id = self.stored.schedules.get(name)
            key = stored_id or f"new-schedule:{index}"
            self.schedule_keys[name] = key
            if data is not None:
                self.plan.schedules.append(ScheduleEntry(data, stored_id, key, path))

    def _members(self, raw: Any, path: Path) -> Any:
        if not isinstance(raw, dict) or not isinstance(raw.get("layers"), list):
            return raw
        layers = []
        for j, layer in enumerate(raw["layers"]):
            if isinstance(layer, dict) and isinstance(layer.get("members"), list):
                where = (*path, "layers", j, "members")
                members = [self.staff_ref(m, (*where, k)) for k, m in enumerate(layer["members"])]
                layer = {**layer, "members": members}
            layers.append(layer)
        return {**raw, "layers": layers}

    def schedule_ref(self, value: Any, path: Path) -> Any:
        if not isinstance(value, str):
            return value
        key = self.schedule_keys.get(value.strip())
        if key is None:
            self.problem(path, f"no schedule named {value!r} in this file or stored")
            return "unknown"
        return key

    # --- chains ---------------------------------------------------------------------------

    def chains(self, items: list[Any]) -> None:
        names: dict[str, Path] = {}
        for index, raw in enumerate(items):
            path: Path = ("chains", index)
            data = self.validate(ChainCreate, self._chain_refs(raw, path), path)
            name = data.name if data else _text(raw, "name")
            if name is not None:
                self._first(names, name, (*path, "name"), "chain")
            if data is not None:
                self.plan.chains.append(ChainEntry(data, path))

    def _chain_refs(self, raw: Any, path: Path) -> Any:
        if not isinstance(raw, dict):
            return raw
        raw = dict(raw)
        if isinstance(raw.get("steps"), list):
            raw["steps"] = [
                self._targets(step, (*path, "steps", j)) for j, step in enumerate(raw["steps"])
            ]
        if "all_hands" in raw:
            raw["all_hands"] = self._targets(raw["all_hands"], (*path, "all_hands"))
        last_resort = raw.get("last_resort")
        if isinstance(last_resort, str):
            raw["last_resort"] = self.staff_ref(last_resort, (*path, "last_resort"))
        elif last_resort is not None:
            raw["last_resort"] = self._targets(last_resort, (*path, "last_resort"))
        return raw

    def _targets(self, item: Any, path: Path) -> Any:
        if not isinstance(item, dict):
            return item
        item = dict(item)
        if isinstance(item.get("targets"), list):
            targets = item["targets"]
            item["targets"] = [
                self.staff_ref(v, (*path, "targets", k)) for k, v in enumerate(targets)
            ]
        if isinstance(item.get("schedules"), list):
            refs = item["schedules"]
            item["schedules"] = [
                self.schedule_ref(v, (*path, "schedules", k)) for k, v in enumerate(refs)
            ]
        return item


def _text(raw: Any, key: str) -> str | None:
    value = raw.get(key) if isinstance(raw, dict) else None
    return (value.strip() or None) if isinstance(value, str) else None


# --- from keys to ids -----------------------------------------------------------------------


def with_ids(
    data: ChainCreate | ScheduleCreate, staff: Mapping[str, str], schedules: Mapping[str, str]
) -> dict[str, Any]:
    """`data` as a body whose staff and schedule keys are replaced by the ids they got."""
    body: dict[str, Any] = data.model_dump(mode="json", by_alias=True, exclude_unset=False)

    def swap(item: Any) -> None:
        if isinstance(item, dict):
            for name, ids in (("targets", staff), ("members", staff), ("schedules", schedules)):
                if isinstance(item.get(name), list):
                    item[name] = [ids.get(v, v) for v in item[name]]

    for part in ("steps", "layers"):
        for item in body.get(part) or []:
            swap(item)
    for part in ("all_hands", "last_resort"):
        swap(body.get(part))
    return body
