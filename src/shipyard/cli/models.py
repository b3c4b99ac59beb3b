"""`shipyard models ...`: the registry from the command line."""

from __future__ import annotations

from typing import Annotated, Any

import typer
from rich.text import Text

from shipyard.cli import render
from shipyard.cli.runs import open_cli_store
from shipyard.errors import InvalidInput
from shipyard.registry.uris import parse_model_ref
from shipyard.store.base import Store
from shipyard.store.entities import ModelVersion

app = typer.Typer(
    help="Registered models: versions, aliases, validation and promotion.",
    no_args_is_help=True,
)
alias_app = typer.Typer(help="Set or remove an alias of a model version.", no_args_is_help=True)
app.add_typer(alias_app, name="alias")

REF_HELP = "A model version: NAME/VERSION or NAME@ALIAS (models:/... works too)."
JSON_HELP = "Print JSON instead of a table."


@app.command("ls")
def list_models(
    as_json: Annotated[bool, typer.Option("--json", help=JSON_HELP)] = False,
) -> None:
    """List registered models with their latest version and aliases."""
    from shipyard.registry.policy import Policy

    with open_cli_store() as store:
        models = store.list_registered_models()
    if as_json:
        render.print_json([{**m.to_dict(), "policy": Policy.of(m).to_dict()} for m in models])
        return
    t = render.table("name", "latest", "aliases", "updated", "description")
    for m in models:
        aliases = ", ".join(f"{a}→{n}" for a, n in m.aliases.items())
        latest = str(m.latest_version) if m.latest_version else "-"
        t.add_row(m.name, latest, aliases, render.format_time(m.updated_at), m.description)
    console = render.out()
    console.print(t if models else Text("no registered models", style="dim"))


@app.command("show")
def show(
    ref: Annotated[str, typer.Argument(help=f"A model NAME, or {REF_HELP}")],
    as_json: Annotated[bool, typer.Option("--json", help=JSON_HELP)] = False,
) -> None:
    """A model (its versions, aliases, policy) or one version (lineage, validations, files)."""
    from shipyard.registry import api

    with open_cli_store() as store:
        if "/" not in ref.removeprefix("models:/") and "@" not in ref:
            _show_model(store, ref.removeprefix("models:/"), as_json)
            return
        version = api.resolve(store, parse_model_ref(ref))
        lineage = api.lineage(version)
        validations = store.list_validations(version.name, version.version)
    if as_json:
        data = version.to_dict()
        data["lineage"] = lineage
        data["validations"] = [
            {k: val for k, val in r.to_dict().items() if k != "report"} for r in validations
        ]
        render.print_json(data)
        return
    console = render.out()
    console.print(
        render.key_value_table(
            [
                ("version", version.uri),
                ("aliases", ", ".join(version.aliases) or "-"),
                ("flavor", version.flavor),
                ("created", f"{render.iso_time(version.created_at)} by {version.created_by}"),
                ("description", version.description or "-"),
                ("digest", version.digest),
            ]
        )
    )
    if version.tags:
        render.section(console, "tags", render.key_value_table(sorted(version.tags.items())))
    render.section(console, "signature", _signature_text(version))
    rows = [(k, _plain(val)) for k, val in lineage.items() if k != "datasets"]
    render.section(console, "lineage", render.key_value_table(rows))
    for d in lineage.get("datasets", []):
        console.print(
            f"  dataset {d['name']} ({d['context']}): {d['rows']} rows, {d['digest'][:12]}"
        )
    t = render.table("id", "status", "baseline", "checks", "when", "by")
    for r in validations:
        baseline = f"{r.baseline_version}" if r.baseline_version else "-"
        if r.baseline_alias:
            baseline += f" (@{r.baseline_alias})"
        t.add_row(
            str(r.id),
            render.status_text(r.status),
            baseline,
            ", ".join(r.checks),
            render.format_time(r.created_at),
            r.created_by,
        )
    render.section(console, "validations", t if validations else Text("none", style="dim"))
    files = render.table("path", "size", "digest")
    for f in version.files:
        files.add_row(f.path, render.format_size(f.size), f.digest[:12])
    render.section(console, "files", files)


def _show_model(store: Store, name: str, as_json: bool) -> None:
    from shipyard.registry.policy import Policy

    model = store.get_registered_model(name)
    versions = store.list_model_versions(name)
    policy = Policy.of(model)
    if as_json:
        data = model.to_dict()
        data["policy"] = policy.to_dict()
        data["versions"] = [
            {k: val for k, val in v.to_dict().items() if k != "files"} for v in versions
        ]
        render.print_json(data)
        return
    console = render.out()
    console.print(
        render.key_value_table(
            [
                ("model", model.name),
                ("description", model.description or "-"),
                ("created", f"{render.iso_time(model.created_at)} by {model.created_by}"),
                *_policy_rows(policy),
            ]
        )
    )
    t = render.table("version", "aliases", "flavor", "run", "created", "by")
    for v in reversed(versions):
        t.add_row(
            str(v.version),
            Text(", ".join(v.aliases), style="bold green"),
            v.flavor,
            render.short_id(v.run_id) if v.run_id else "-",
            render.format_time(v.created_at),
            v.created_by,
        )
    render.section(console, "versions", t)


def _signature_text(version: ModelVersion) -> Any:
    sig = version.signature
    if not sig:
        return Text("none (logged without an input example)", style="dim")
    if "tensor" in sig:
        return Text(f"tensor {sig['tensor']['dtype']} {tuple(sig['tensor']['shape'])}")
    return render.key_value_table((c["name"], c["dtype"]) for c in sig["columns"])


def _short(value: Any) -> str:
    """Digests and run ids cut to 12 characters: enough to tell them apart in a table."""
    text = str(value)
    if len(text) in (32, 64) and all(c in "0123456789abcdef" for c in text):
        return text[:12]
    return text


def _plain(value: Any) -> str:
    return "-" if value is None else str(value)


@app.command("update")
def update(
    ref: Annotated[str, typer.Argument(help=f"A model NAME, or {REF_HELP}")],
    description: Annotated[
        str | None, typer.Option("--description", "-d", help="New description.")
    ] = None,
    tag: Annotated[
        list[str] | None, typer.Option("--tag", "-t", help="KEY=VALUE; repeatable.")
    ] = None,
) -> None:
    """Change the description or tags of a model or of one version (audited)."""
    from shipyard.registry import api
    from shipyard.tracking.models import current_user

    tags = {}
    for item in tag or []:
        key, eq, value = item.partition("=")
        if not eq or not key:
            raise InvalidInput(f"--tag takes KEY=VALUE, got {item!r}")
        tags[key] = value
    if description is None and not tags:
        raise InvalidInput("nothing to change: give --description and/or --tag")
    with open_cli_store() as store:
        if "/" not in ref.removeprefix("models:/") and "@" not in ref:
            name = ref.removeprefix("models:/")
            store.update_registered_model(
                name, description=description, tags=tags, actor=current_user()
            )
            what = name
        else:
            version = api.resolve(store, parse_model_ref(ref))
            store.update_model_version(
                version.name,
                version.version,
                description=description,
                tags=tags,
                actor=current_user(),
            )
            what = f"{version.name}/{version.version}"
    render.out().print(f"updated {what}", markup=False)


@app.command("history")
def history(
    name: Annotated[str | None, typer.Argument(help="Model name (default: every model).")] = None,
    limit: Annotated[int, typer.Option("--limit", "-n", help="Newest N entries.")] = 50,
    as_json: Annotated[bool, typer.Option("--json", help=JSON_HELP)] = False,
) -> None:
    """The audit log: every change to the registry, newest first."""
    if limit < 1:
        raise InvalidInput(f"--limit must be at least 1, got {limit}")
    with open_cli_store() as store:
        if name is not None:
            store.get_registered_model(name)  # NotFound names it
        entries = store.list_audit(name, limit=limit)
    if as_json:
        render.print_json([e.to_dict() for e in entries])
        return
    t = render.table("when (UTC)", "actor", "model", "version", "action", "details")
    t.columns[0].no_wrap = True
    for e in entries:
        details = ", ".join(
            f"{k}={_short(val)}" for k, val in e.details.items() if val not in (None, "", {})
        )
        t.add_row(
            (render.iso_time(e.time) or "")[:19].replace("T", " "),
            e.actor,
            e.model,
            _plain(e.version),
            e.action,
            details,
        )
    render.out().print(t if entries else Text("no registry changes", style="dim"))


@app.command("diff")
def diff(
    first: Annotated[str, typer.Argument(help=REF_HELP)],
    second: Annotated[str, typer.Argument(help=REF_HELP)],
    as_json: Annotated[bool, typer.Option("--json", help=JSON_HELP)] = False,
) -> None:
    """What differs between two versions: params, metrics, signature, environment."""
    from shipyard.registry import api
    from shipyard.registry.diff import diff_versions

    with open_cli_store() as store:
        a = api.resolve(store, parse_model_ref(first))
        b = api.resolve(store, parse_model_ref(second, name=a.name))
        rows = diff_versions(store, a, b)
    if as_json:
        render.print_json(rows)
        return
    t = render.table("", "what", a.uri.removeprefix("models:/"), b.uri.removeprefix("models:/"))
    for row in rows:
        t.add_row(row["kind"], row["key"], _plain(row["a"]), _plain(row["b"]))
    render.out().print(t if rows else Text("no differences", style="dim"))


@app.command("validate")
def validate(
    ref: Annotated[str, typer.Argument(help=REF_HELP)],
    data: Annotated[
        str, typer.Option("--data", help="Validation data: a .parquet, .csv or .jsonl file.")
    ],
    target: Annotated[
        str | None,
        typer.Option("--target", help="Column with the true values (default: shipyard.yaml's)."),
    ] = None,
    baseline: Annotated[
        str,
        typer.Option(
            "--baseline",
            help="Version or @alias to compare with; 'none' for no baseline "
            "(default: the holder of @production, or shipyard.yaml's baseline).",
        ),
    ] = "default",
    config: Annotated[
        str | None,
        typer.Option("--config", help="The checks file (default: shipyard.yaml here or above)."),
    ] = None,
    slice_by: Annotated[
        str | None, typer.Option("--slice-by", help="Also run the checks per value of a column.")
    ] = None,
    html: Annotated[
        str | None, typer.Option("--html", help="Also write the HTML report to this file.")
    ] = None,
    trust: Annotated[
        bool, typer.Option("--trust", help="Allow loading models whose format runs code.")
    ] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Print the report as JSON.")] = False,
) -> None:
    """Run the model's declared checks on data; store the report. Exit 0 only if all passed."""
    from pathlib import Path

    from shipyard.registry.validate import validate as run_validation

    if html and not Path(html).resolve().parent.is_dir():
        raise InvalidInput(f"--html {html}: the folder {str(Path(html).parent)!r} does not exist")
    with open_cli_store():
        report = run_validation(
            ref,
            data=data,
            target=target,
            baseline=baseline,
            slice_by=slice_by,
            trust=trust,
            config=config,
        )
    if html:
        Path(html).write_text(report.to_html(), encoding="utf-8")
    if as_json:
        render.print_json({**report.to_dict(), "validation_id": report.record.id})
    else:
        console = render.out()
        console.print(report.to_table())
        console.print(
            Text.assemble(
                "validation ",
                str(report.record.id),
                ": ",
                render.status_text(report.status),
            )
        )
    if report.status != "passed":
        raise typer.Exit(1)


@app.command("promote")
def promote(
    ref: Annotated[str, typer.Argument(help=REF_HELP)],
    alias: Annotated[str, typer.Option("--alias", help="The alias to move.")] = "production",
    force: Annotated[
        bool, typer.Option("--force", help="Promote without a passing validation (audited).")
    ] = False,
    reason: Annotated[str, typer.Option("--reason", help="Why; required with --force.")] = "",
) -> None:
    """Move an alias to a version that passed validation against the alias's holder."""
    from shipyard.registry import api

    with open_cli_store():
        done = api.promote(ref, alias, force=force, reason=reason)
    was = "unset" if done.previous is None else f"version {done.previous}"
    how = (
        " (forced)"
        if done.forced
        else f" (validation {done.validation.id})"
        if done.validation
        else ""
    )
    render.out().print(
        f"{done.name}@{done.alias} → version {done.version}, was {was}{how}", markup=False
    )


@alias_app.command("set")
def alias_set(
    ref: Annotated[str, typer.Argument(help=REF_HELP)],
    alias: Annotated[str, typer.Argument(help="The alias, e.g. staging.")],
) -> None:
    """Point an alias at a version (protected aliases move only with `models promote`)."""
    from shipyard.registry import api

    with open_cli_store():
        version = api.set_alias(ref, alias)
    render.out().print(f"{version.name}@{alias} → version {version.version}", markup=False)


@alias_app.command("rm")
def alias_rm(
    name: Annotated[str, typer.Argument(help="Model name.")],
    alias: Annotated[str, typer.Argument(help="The alias to remove.")],
    reason: Annotated[
        str | None, typer.Option("--reason", help="Why; required for a protected alias.")
    ] = None,
) -> None:
    """Remove an alias."""
    from shipyard.registry import api

    with open_cli_store():
        held = api.delete_alias(name, alias, reason=reason)
    render.out().print(f"removed {name}@{alias} (it held version {held})", markup=False)


@app.command("policy")
def policy(
    name: Annotated[str, typer.Argument(help="Model name.")],
    protect: Annotated[
        list[str] | None, typer.Option("--protect", help="Protect an alias; repeatable.")
    ] = None,
    unprotect: Annotated[
        list[str] | None, typer.Option("--unprotect", help="Stop protecting an alias.")
    ] = None,
    maintainer: Annotated[
        list[str] | None, typer.Option("--maintainer", help="Add a maintainer (OS user name).")
    ] = None,
    remove_maintainer: Annotated[
        list[str] | None, typer.Option("--remove-maintainer", help="Remove a maintainer.")
    ] = None,
    require: Annotated[
        list[str] | None,
        typer.Option("--require", help="Require a check by name, e.g. no_regression:accuracy."),
    ] = None,
    unrequire: Annotated[
        list[str] | None, typer.Option("--unrequire", help="Drop a required check.")
    ] = None,
    checks_from: Annotated[
        str | None,
        typer.Option(
            "--checks-from",
            help="Require exactly the checks (with their limits) that this shipyard.yaml "
            "declares for the model.",
        ),
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help=JSON_HELP)] = False,
) -> None:
    """Show a model's promotion policy, or change it (maintainers only; audited)."""
    from pathlib import Path

    from shipyard.registry import api
    from shipyard.registry.policy import Policy, edited

    with open_cli_store() as store:
        current = Policy.of(store.get_registered_model(name))
        changes = (protect, unprotect, maintainer, remove_maintainer, require, unrequire)
        if checks_from is not None or any(changes):
            replace = None
            if checks_from is not None:
                from shipyard.registry.config import load_model_checks

                replace = [c.spec() for c in load_model_checks(name, Path(checks_from)).checks]
            current = api.save_policy(
                name,
                edited(
                    current,
                    protect=protect or (),
                    unprotect=unprotect or (),
                    add_maintainers=maintainer or (),
                    remove_maintainers=remove_maintainer or (),
                    require=require or (),
                    unrequire=unrequire or (),
                    replace_required=replace,
                ),
            )
    if as_json:
        render.print_json(current.to_dict())
        return
    render.out().print(render.key_value_table(_policy_rows(current)))


def _policy_rows(policy: Any) -> list[tuple[str, Any]]:
    from shipyard.registry.policy import describe

    required = "; ".join(describe(r) for r in policy.required_checks)
    return [
        ("protected aliases", ", ".join(policy.protected_aliases) or "-"),
        ("maintainers", ", ".join(policy.maintainers) or "anyone"),
        ("required checks", required or "the floor: no_regression against the holder"),
    ]
