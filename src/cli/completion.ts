/**
 * Shell completion: `nimbus completion bash|zsh` prints a script for the shell to source. The
 * script asks the CLI itself what may come next (`nimbus __complete <words so far>`), so the
 * completions always match the contract the CLI was built from and are never regenerated.
 */
import type { Command } from 'commander';
import type { Ctx } from './context.js';
import { UsageError } from './errors.js';

const BASH = `# nimbus completion for bash: source <(nimbus completion bash)
_nimbus_complete() {
  local IFS=$'\\n'
  COMPREPLY=( $(nimbus __complete "\${COMP_WORDS[@]:1:COMP_CWORD}" 2>/dev/null) )
}
complete -o default -F _nimbus_complete nimbus`;

const ZSH = `#compdef nimbus
# nimbus completion for zsh: source <(nimbus completion zsh)
_nimbus() {
  local IFS=$'\\n'
  local -a candidates
  candidates=( $(nimbus __complete "\${(@)words[2,CURRENT]}" 2>/dev/null) )
  compadd -- "\${candidates[@]}"
}
compdef _nimbus nimbus`;

/**
 * What may follow `words` (the last one is the word being typed, maybe empty): subcommands of the
 * command the earlier words name, or its options when the word starts with a dash.
 */
export function completionWords(program: Command, words: string[]): string[] {
  const current = words.at(-1) ?? '';
  let cmd = program;
  for (const word of words.slice(0, -1)) {
    if (word.startsWith('-')) continue;
    const next = cmd.commands.find((c) => c.name() === word || c.aliases().includes(word));
    if (next) cmd = next;
  }
  const subcommands = cmd.commands.map((c) => c.name()).filter((n) => !n.startsWith('_'));
  const options = cmd.options.flatMap((o) => (o.long ? [o.long] : []));
  const pool = current.startsWith('-') || subcommands.length === 0 ? [...options, '--help'] : subcommands;
  return pool.filter((w) => w.startsWith(current)).sort();
}

export function addCompletion(program: Command, ctx: Ctx): void {
  program
    .command('completion')
    .description('print the shell completion script (bash or zsh)')
    .argument('<shell>', 'bash or zsh')
    .addHelpText(
      'after',
      "\nInstall:\n  bash: echo 'source <(nimbus completion bash)' >> ~/.bashrc\n  zsh:  echo 'source <(nimbus completion zsh)' >> ~/.zshrc",
    )
    .action((shell: string) => {
      if (shell === 'bash') ctx.out(BASH);
      else if (shell === 'zsh') ctx.out(ZSH);
      else throw new UsageError(`no completion for '${shell}': use bash or zsh`);
    });
}
