"""`roar completion bash|zsh`: a shell completion script, generated from the CLI itself.

The script carries what every command takes (subcommands, options, which options take a
value, what each positional argument is), read from the Typer app at generation time, so a
new verb or option completes without editing a table here. Refs (`@N`, `session:N`) come
from the workspace at the moment of the tab, through the hidden `roar completion --refs`;
it is called only where a ref fits and the word could be one (docs/completion.md).
"""

from __future__ import annotations

import sys

import typer

SHELLS = ("bash", "zsh")

# What a positional argument is, by its parameter name; anything else completes nothing.
ARGUMENT_KINDS = {"ref": "ref", "command": "command", "src": "file", "dest": "file", "paths": "file",
                  "shell": f"choice:{','.join(SHELLS)}"}


def value_kinds() -> dict[str, str]:
    """What an option's value is, where its type does not say (a click.Choice says itself)."""
    from roar.lineage.dagformat import FORMATS

    return {"--output": "file", "--script": "file", "--db": "file", "--dir": "dir",
            "--session": "session", "--format": f"choice:{','.join(FORMATS)}",
            "--hash": "choice:sha256,sha512,sha1,md5"}   # blake3 is always on


class Spec:
    """What the command at `path` ("" is roar itself, "glaas token" a nested group) takes.
    A plain class: a dataclass would cost every `roar` start a millisecond to define."""

    def __init__(self, path: str) -> None:
        self.path = path
        self.subcommands: list[tuple[str, str]] = []   # (name, summary)
        self.options: list[tuple[str, str]] = []       # (option string, help)
        self.value_options: dict[str, str] = {}        # option -> kind of value
        self.arguments: list[str] = []                 # kinds in order; "KIND*" repeats


def specs(app: typer.Typer) -> list[Spec]:
    import typer.main

    found: list[Spec] = []
    _walk(typer.main.get_command(app), "", value_kinds(), found)
    return found


def _walk(command, path: str, kinds: dict[str, str], found: list[Spec]) -> None:
    import click

    spec = Spec(path)
    for param in command.params:
        if getattr(param, "hidden", False):
            continue
        if isinstance(param, click.Option):
            names = [*param.opts, *param.secondary_opts]
            spec.options += [(name, _one_line(param.help)) for name in names]
            if not param.is_flag:
                kind = (f"choice:{','.join(param.type.choices)}" if isinstance(param.type, click.Choice)
                        else kinds.get(param.opts[0], "none"))
                spec.value_options.update(dict.fromkeys(names, kind))
        else:
            kind = ARGUMENT_KINDS.get(param.name or "", "none")
            spec.arguments.append(kind + ("*" if param.nargs == -1 else ""))
    spec.options += [("-h", "Show the help and exit."), ("--help", "Show the help and exit.")]
    if isinstance(command, click.Group):
        for name, sub in sorted(command.commands.items()):
            if not sub.hidden:
                spec.subcommands.append((name, _one_line(sub.get_short_help_str(limit=70))))
    found.append(spec)
    for name, sub in sorted(getattr(command, "commands", {}).items()):
        if not sub.hidden:
            _walk(sub, f"{path} {name}".strip(), kinds, found)


def _one_line(text: str | None) -> str:
    return " ".join((text or "").split())


def refs() -> list[str]:
    """The refs worth offering: the current session's steps, then `session` and `session:N`.
    Read-only, and never an error: a tab press must not print one."""
    from roar.lineage.refs import step_name
    from roar.store import index
    from roar.store.workspace import Workspace

    ws = Workspace.find()
    ws.writable = False   # a tab press reads: no healing or migration of the index
    conn = ws.index()
    try:
        current = index.current_session(conn)
        steps = conn.execute("SELECT step, type FROM jobs WHERE session_id = ? ORDER BY type = 'build', step",
                             (current,)).fetchall()
        sessions = conn.execute("SELECT seq FROM sessions ORDER BY seq").fetchall()
    finally:
        conn.close()
        ws.close()
    return ([step_name(step, kind) for step, kind in steps] + ["session"]
            + [f"session:{seq}" for (seq,) in sessions])


# bash -----------------------------------------------------------------------------------

BASH = r"""# bash completion for roar: `roar completion bash` (docs/completion.md)
# Install: roar completion bash > ~/.local/share/bash-completion/completions/roar
#      or: echo 'source <(roar completion bash)' >> ~/.bashrc

# What the command at path $1 takes: subcommands, options, the options that take a value,
# and the kinds of its positional arguments (KIND* repeats).
_roar_spec() {
    case $1 in
@SPEC@
        *) subs='' opts='' vals='' args='' ;;
    esac
}

# The value kind of option $2 of the command at path $1.
_roar_value_kind() {
    case "$1|$2" in
@VALUES@
        *) kind=none ;;
    esac
}

_roar_add() {   # add the words matching $cur to COMPREPLY
    local w
    while IFS= read -r w; do [[ -n $w ]] && COMPREPLY+=("$w"); done < <(compgen -W "$1" -- "$cur")
}

_roar_files() {
    local w
    compopt -o filenames 2>/dev/null
    while IFS= read -r w; do COMPREPLY+=("$w"); done < <(compgen "${1:--f}" -- "$cur")
}

_roar_refs() {   # $1: all or session; only where the word can still become a ref
    case $cur in
        @*|s|se|ses|sess|sessi|sessio|session*|'') ;;
        *) return ;;
    esac
    local found
    found=$("$roar" completion --refs 2>/dev/null) || return
    [[ $1 == session ]] && found=$(printf '%s\n' $found | grep '^session')
    _roar_add "$found"
}

_roar_kind() {
    case $1 in
        ref) _roar_refs all; [[ $cur == @* ]] || _roar_files ;;
        session) _roar_refs session ;;
        file) _roar_files ;;
        dir) _roar_files -d ;;
        command) _roar_add "$(compgen -c -- "$cur" | sort -u)" ;;
        choice:*) local choices=${1#choice:}; _roar_add "${choices//,/ }" ;;
    esac
}

_roar() {
    COMPREPLY=()
    # the words up to the cursor, split at blanks only (bash also splits at : and =)
    local line=${COMP_LINE:0:COMP_POINT} roar=${COMP_WORDS[0]}
    local -a words kinds
    read -ra words <<< "$line"
    [[ ${#words[@]} -eq 0 || $line == *[[:space:]] ]] && words+=("")
    local n=$(( ${#words[@]} - 1 ))
    local cur=${words[n]} cmdpath='' subs opts vals args kind word value_of='' dashdash='' i=1 k=0 cmd_at=0
    _roar_spec ''
    while (( i < n )); do
        word=${words[i]}
        if [[ $word == -- && -z $dashdash ]]; then
            dashdash=1
            [[ $args == command* ]] && { cmd_at=$((i + 1)); break; }
        elif [[ $word == -* && -z $dashdash ]]; then
            if [[ $word != *=* && " $vals " == *" $word "* ]]; then
                i=$((i + 1))
                (( i == n )) && value_of=$word
            fi
        elif (( k == 0 )) && [[ -n $subs && " $subs " == *" $word "* ]]; then
            cmdpath=${cmdpath:+$cmdpath }$word
            _roar_spec "$cmdpath"
        else
            [[ $args == command* ]] && { cmd_at=$i; break; }
            k=$((k + 1))
        fi
        i=$((i + 1))
    done
    if (( cmd_at )); then   # the rest is the command roar traces: complete it as its own line
        if (( cmd_at == n )); then
            _roar_kind command
        elif declare -F _command_offset >/dev/null && (( COMP_CWORD == n )); then
            _command_offset "$cmd_at"
        else
            _roar_files
        fi
        return 0
    fi
    local pre=''
    if [[ -z $value_of && -z $dashdash && $cur == --*=* && " $vals " == *" ${cur%%=*} "* ]]; then
        value_of=${cur%%=*}
        [[ $COMP_WORDBREAKS == *=* ]] || pre="$value_of="
        cur=${cur#*=}
    fi
    if [[ -n $value_of ]]; then
        _roar_value_kind "$cmdpath" "$value_of"
        _roar_kind "$kind"
    elif [[ $cur == -* && -z $dashdash ]]; then
        _roar_add "$opts"
    elif [[ -n $subs ]]; then
        _roar_add "$subs"
    else
        read -ra kinds <<< "$args"
        if (( k < ${#kinds[@]} )); then kind=${kinds[k]}
        elif [[ ${kinds[-1]} == *\* ]]; then kind=${kinds[-1]}
        else kind=none
        fi
        _roar_kind "${kind%\*}"
    fi
    # bash replaces only the part of the word after its last : (a word break)
    if [[ $cur == *:* && $COMP_WORDBREAKS == *:* ]]; then
        local colon=${cur%"${cur##*:}"}
        COMPREPLY=("${COMPREPLY[@]#"$colon"}")
    fi
    [[ -n $pre ]] && COMPREPLY=("${COMPREPLY[@]/#/$pre}")
    return 0
}

complete -F _roar roar
"""


def _sq(text: str) -> str:
    """A single-quoted shell word (bash and zsh)."""
    return "'" + text.replace("'", "'\\''") + "'"


def bash_script(all_specs: list[Spec]) -> str:
    spec_lines, value_lines = [], []
    for s in all_specs:
        words = (" ".join(n for n, _ in s.subcommands), " ".join(o for o, _ in s.options),
                 " ".join(s.value_options), " ".join(s.arguments))
        spec_lines.append(f"        {_sq(s.path)}) subs={_sq(words[0])} opts={_sq(words[1])} "
                          f"vals={_sq(words[2])} args={_sq(words[3])} ;;")
        value_lines += [f"        {_sq(s.path + '|' + opt)}) kind={_sq(kind)} ;;"
                        for opt, kind in s.value_options.items() if kind != "none"]
    return BASH.replace("@SPEC@", "\n".join(spec_lines)).replace("@VALUES@", "\n".join(value_lines))


# zsh ------------------------------------------------------------------------------------

ZSH = r"""#compdef roar
# zsh completion for roar: `roar completion zsh` (docs/completion.md)
# Install: roar completion zsh > "${fpath[1]}/_roar"   (then start a new shell)
#      or: echo 'source <(roar completion zsh)' >> ~/.zshrc   (after compinit)

# What the command at path $1 takes: subcommands and options as name:description, the
# options that take a value, and the kinds of its positional arguments (KIND* repeats).
_roar_spec() {
    case $1 in
@SPEC@
        *) subs=() opts=() vals=() args=() ;;
    esac
}

_roar_value_kind() {
    case "$1|$2" in
@VALUES@
        *) kind=none ;;
    esac
}

_roar_refs() {   # $1: all or session; only where the word can still become a ref
    [[ $PREFIX == (@*|s|se|ses|sess|sessi|sessio|session*|) ]] || return 1
    local -a found
    found=(${(f)"$(${words[1]} completion --refs 2>/dev/null)"})
    [[ $1 == session ]] && found=(${(M)found:#session*})
    (( ${#found} )) && compadd -Q -- $found
}

_roar_is_sub() {   # is $1 a subcommand of the command walked so far?
    local sub
    for sub in $subs; do [[ ${sub%%:*} == "$1" ]] && return 0; done
    return 1
}

_roar_kind() {
    case $1 in
        ref) _roar_refs all; [[ $PREFIX == @* ]] || _files ;;
        session) _roar_refs session ;;
        file) _files ;;
        dir) _files -/ ;;
        command) _command_names -e ;;
        choice:*) compadd -- ${(s:,:)${1#choice:}} ;;
        *) return 1 ;;
    esac
}

_roar() {
    local cmdpath='' kind word value_of='' dashdash='' i=2 k=0 cmd_at=0
    local -a subs opts vals args
    _roar_spec ''
    while (( i < CURRENT )); do
        word=${words[i]}
        if [[ $word == -- && -z $dashdash ]]; then
            dashdash=1
            [[ $args[1] == command* ]] && { cmd_at=$((i + 1)); break; }
        elif [[ $word == -* && -z $dashdash ]]; then
            if (( ${vals[(Ie)$word]} )); then
                i=$((i + 1))
                (( i == CURRENT )) && value_of=$word
            fi
        elif (( k == 0 )) && _roar_is_sub "$word"; then
            cmdpath=${cmdpath:+$cmdpath }$word
            _roar_spec "$cmdpath"
        else
            [[ $args[1] == command* ]] && { cmd_at=$i; break; }
            k=$((k + 1))
        fi
        i=$((i + 1))
    done
    if (( cmd_at )); then   # the rest is the command roar traces: complete it as its own line
        shift $((cmd_at - 1)) words
        (( CURRENT -= cmd_at - 1 ))
        _normal
        return
    fi
    if [[ -n $value_of ]]; then
        _roar_value_kind "$cmdpath" "$value_of"
        _roar_kind "$kind"
    elif [[ $PREFIX == -* && -z $dashdash ]]; then
        _describe -t options option opts
    elif (( ${#subs} )); then
        _describe -t commands command subs
    else
        if (( k < ${#args} )); then kind=${args[k + 1]}
        elif [[ $args[-1] == *\* ]]; then kind=$args[-1]
        else kind=none
        fi
        _roar_kind "${kind%\*}"
    fi
}

if [[ $funcstack[1] == _roar ]]; then
    _roar "$@"    # autoloaded from $fpath
else
    compdef _roar roar
fi
"""


def _zsh_pairs(pairs: list[tuple[str, str]]) -> str:
    return " ".join(_sq(f"{name.replace(':', chr(92) + ':')}:{text}" if text else name)
                    for name, text in pairs)


def zsh_script(all_specs: list[Spec]) -> str:
    spec_lines, value_lines = [], []
    for s in all_specs:
        spec_lines.append(f"        {_sq(s.path)}) subs=({_zsh_pairs(s.subcommands)})\n"
                          f"            opts=({_zsh_pairs(s.options)})\n"
                          f"            vals=({' '.join(map(_sq, s.value_options))})"
                          f" args=({' '.join(map(_sq, s.arguments))}) ;;")
        value_lines += [f"        {_sq(s.path + '|' + opt)}) kind={_sq(kind)} ;;"
                        for opt, kind in s.value_options.items() if kind != "none"]
    return ZSH.replace("@SPEC@", "\n".join(spec_lines)).replace("@VALUES@", "\n".join(value_lines))


def register(app: typer.Typer) -> None:
    @app.command("completion")
    def completion_cmd(
        shell: str = typer.Argument(None, metavar="SHELL", help="bash or zsh."),
        list_refs: bool = typer.Option(False, "--refs", hidden=True,
                                       help="Print the refs a tab may offer (used by the scripts)."),
    ) -> None:
        """Print a completion script for bash or zsh: verbs, options, files and refs.

        bash: `source <(roar completion bash)` in ~/.bashrc; zsh: `source <(roar completion zsh)`
        in ~/.zshrc after compinit (docs/completion.md)."""
        from roar.errors import UsageError

        if list_refs:
            try:
                found = refs()
            except Exception:   # noqa: BLE001 - no workspace, unreadable index: offer nothing
                return
            sys.stdout.write("".join(f"{ref}\n" for ref in found))
            return
        if shell not in SHELLS:
            given = f"unknown shell {shell!r}" if shell else "no shell given"
            raise UsageError(f"{given}: use `roar completion bash` or `roar completion zsh`")
        render = bash_script if shell == "bash" else zsh_script
        sys.stdout.write(render(specs(app)))
