package main

import (
	"fmt"

	"github.com/urfave/cli/v2"

	"github.com/icefill/icefill/internal/errkind"
)

// The bash and zsh scripts ask the binary for the words to complete
// (urfave/cli's --generate-bash-completion); fish gets a static script.
const bashCompletion = `# bash completion for icefill; load with: source <(icefill completion bash)
_icefill_complete() {
  local cur="${COMP_WORDS[COMP_CWORD]}"
  local words=("${COMP_WORDS[@]:0:$COMP_CWORD}")
  local opts
  if [[ "$cur" == -* ]]; then
    opts=$("${words[@]}" "$cur" --generate-bash-completion 2>/dev/null)
  else
    opts=$("${words[@]}" --generate-bash-completion 2>/dev/null)
  fi
  COMPREPLY=($(compgen -W "$opts" -- "$cur"))
}
complete -o bashdefault -o default -F _icefill_complete icefill
`

const zshCompletion = `#compdef icefill
# zsh completion for icefill; load with: source <(icefill completion zsh)
_icefill() {
  local -a opts
  local cur=${words[-1]}
  if [[ "$cur" == -* ]]; then
    opts=("${(@f)$(${words[@]:0:#words[@]-1} "$cur" --generate-bash-completion 2>/dev/null)}")
  else
    opts=("${(@f)$(${words[@]:0:#words[@]-1} --generate-bash-completion 2>/dev/null)}")
  fi
  if [[ "${opts[1]}" != "" ]]; then
    _describe 'values' opts
  else
    _files
  fi
}
compdef _icefill icefill
`

func completionCommand() *cli.Command {
	return &cli.Command{
		Name:      "completion",
		Usage:     "print a shell completion script: bash, zsh or fish",
		UsageText: "icefill completion bash|zsh|fish",
		Description: `Prints a script that completes icefill's commands and flags.

Examples:
   source <(icefill completion bash)          # in ~/.bashrc
   source <(icefill completion zsh)           # in ~/.zshrc, after compinit
   icefill completion fish > ~/.config/fish/completions/icefill.fish

` + exitCodesHelp,
		Action: func(c *cli.Context) error {
			if c.NArg() != 1 {
				return errkind.Usagef("completion: name one shell: bash, zsh or fish")
			}
			var script string
			switch shell := c.Args().First(); shell {
			case "bash":
				script = bashCompletion
			case "zsh":
				script = zshCompletion
			case "fish":
				s, err := c.App.ToFishCompletion()
				if err != nil {
					return err
				}
				script = s
			default:
				return errkind.Usagef("completion: unknown shell %q: want bash, zsh or fish", shell)
			}
			_, err := fmt.Fprint(c.App.Writer, script)
			return err
		},
	}
}
