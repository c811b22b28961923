# bash completion for troupe, troupe-scheduler and troupe-worker.
#
# Installed as share/bash-completion/completions/troupe (and under the
# daemons' names, so that bash-completion loads it for them too).  Needs
# nothing of the bash-completion package: plain compgen.  The tables are
# declared global (-g): bash-completion sources this file from a function.
#
# To add a command: put its word in _troupe_commands (or a group's list
# in _troupe_subcommands) and its flags in _troupe_flags[...]; a flag that
# takes a value from a fixed set or a file goes in _troupe_values.
# tests/package/test_deb.sh checks that every command and flag that
# `troupe ... --help`, `troupe-scheduler --help` and `troupe-worker --help`
# print is offered here.

_troupe_commands="up map status outputs logs watch abort list workers actors task actor project token health version help"
_troupe_global="--addr --token-file --project --help"

declare -gA _troupe_subcommands=(
	[task]="register list get delete"
	[actor]="create list get delete"
	[project]="create list delete"
	[token]="create list revoke"
)

# Flags of each command, or of "group sub" for the groups above.
declare -gA _troupe_flags=(
	[up]="--workers --slots --home"
	[map]="--cmd --task --actor --items --concurrency --retries --timeout --min-success-ratio --replicas --ttl --protocol --env --cpu --mem --execution-timeout --name --detach --json"
	[status]="--json"
	[outputs]="--json"
	[logs]="--item --attempt"
	[watch]=""
	[abort]="--reason"
	[list]="--json --phase --limit"
	[workers]="--json"
	[actors]="--json"
	[health]="--json"
	[version]=""
	[help]=""
	[task register]="--cmd --actor --retries --timeout --env --cpu --mem --replace --json"
	[task list]="--json"
	[task get]="--json"
	[task delete]=""
	[actor create]="--cmd --replicas --ttl --protocol --max-items --env --cpu --mem --replace --json"
	[actor list]="--json"
	[actor get]="--json"
	[actor delete]=""
	[project create]="--max-running --max-replicas --replace --json"
	[project list]="--json"
	[project delete]=""
	[token create]="--role --expires --json"
	[token list]="--json"
	[token revoke]=""
	[troupe-scheduler]="--home --listen --worker-listen --db --token-file --tls-cert --tls-key --worker-timeout --pull-timeout --actor-prefetch --upload-timeout --http-listen --http-token-file --config --help"
	[troupe-worker]="--scheduler --home --name --slots --cpu --mem --label --token-file --tls-ca --drain-timeout --run-as --allow-root --config --help"
)

# What follows a flag: @file, @dir, @user, a word list, or "" (free text,
# nothing offered).  Flags not listed take no value.
declare -gA _troupe_values=(
	[--addr]="" [--token-file]="@file" [--project]=""
	[--workers]="" [--slots]="" [--home]="@dir"
	[--cmd]="" [--task]="" [--actor]="" [--items]="@file" [--concurrency]=""
	[--retries]="" [--timeout]="" [--min-success-ratio]="" [--replicas]=""
	[--ttl]="" [--protocol]="lines frames" [--env]="" [--cpu]="" [--mem]=""
	[--execution-timeout]="" [--name]="" [--reason]=""
	[--phase]="queued running succeeded failed aborted timed_out"
	[--limit]="" [--max-items]="" [--max-running]="" [--max-replicas]=""
	[--role]="read submit admin worker" [--expires]=""
	[--listen]="" [--worker-listen]="" [--db]="@file" [--tls-cert]="@file"
	[--tls-key]="@file" [--worker-timeout]="" [--pull-timeout]=""
	[--actor-prefetch]="" [--upload-timeout]="" [--config]="@file"
	[--scheduler]="" [--label]="" [--tls-ca]="@file" [--drain-timeout]=""
	[--run-as]="@user" [--item]="" [--attempt]=""
	[--http-listen]="" [--http-token-file]="@file"
)

# Sets COMPREPLY for the value of flag $1, word $2 being typed.
_troupe_value()
{
	local v=${_troupe_values[$1]}
	case $v in
	@file) COMPREPLY=($(compgen -f -- "$2")) ;;
	@dir) COMPREPLY=($(compgen -d -- "$2")) ;;
	@user) COMPREPLY=($(compgen -u -- "$2")) ;;
	*) COMPREPLY=($(compgen -W "$v" -- "$2")) ;;
	esac
}

_troupe()
{
	local cur=${COMP_WORDS[COMP_CWORD]} prev=
	local cmd= sub= key i w
	((COMP_CWORD > 0)) && prev=${COMP_WORDS[COMP_CWORD - 1]}
	COMPREPLY=()

	if [[ $prev == --* && -v _troupe_values[$prev] ]]; then
		_troupe_value "$prev" "$cur"
		return
	fi
	# The command word (and a group's subcommand): the first words that
	# are neither flags nor a flag's value.
	for ((i = 1; i < COMP_CWORD; i++)); do
		w=${COMP_WORDS[i]}
		if [[ $w == --* ]]; then
			[[ -v _troupe_values[$w] ]] && ((i++))
			continue
		fi
		if [[ -z $cmd ]]; then
			cmd=$w
		elif [[ -z $sub && -v _troupe_subcommands[$cmd] ]]; then
			sub=$w
			break
		else
			break
		fi
	done
	if [[ -z $cmd ]]; then
		if [[ $cur == -* ]]; then
			COMPREPLY=($(compgen -W "$_troupe_global --version" -- "$cur"))
		else
			COMPREPLY=($(compgen -W "$_troupe_commands" -- "$cur"))
		fi
		return
	fi
	if [[ -v _troupe_subcommands[$cmd] && -z $sub ]]; then
		if [[ $cur == -* ]]; then
			COMPREPLY=($(compgen -W "$_troupe_global" -- "$cur"))
		else
			COMPREPLY=($(compgen -W "${_troupe_subcommands[$cmd]}" -- "$cur"))
		fi
		return
	fi
	key=$cmd
	[[ -n $sub ]] && key="$cmd $sub"
	# Positional words are ids and names, which only the scheduler knows:
	# nothing is offered for them.
	if [[ $cur == -* ]]; then
		COMPREPLY=($(compgen -W "${_troupe_flags[$key]} $_troupe_global" -- "$cur"))
	fi
}

_troupe_daemon()
{
	local cur=${COMP_WORDS[COMP_CWORD]} prev=
	((COMP_CWORD > 0)) && prev=${COMP_WORDS[COMP_CWORD - 1]}
	COMPREPLY=()
	if [[ $prev == --* && -v _troupe_values[$prev] ]]; then
		_troupe_value "$prev" "$cur"
		return
	fi
	COMPREPLY=($(compgen -W "${_troupe_flags[${1##*/}]}" -- "$cur"))
}

complete -F _troupe troupe
complete -F _troupe_daemon troupe-scheduler troupe-worker
