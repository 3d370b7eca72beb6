/**
 * `relp download <hf-model-id>`: fetch a model's config, tokenizer and safetensors weights from
 * the Hugging Face Hub into a local directory (see src/io/download.ts).
 *
 * stdout gets only the model directory (or the JSON result with --json), so scripts can do
 * `dir=$(relp download gpt2)`; per-file lines and the progress bar go to stderr.
 */
import type { Command } from 'commander';
import { defaultModelDir, downloadModel } from '../../io/download.ts';

interface DownloadCliOptions {
  dir?: string;
  revision: string;
  endpoint?: string;
  json?: boolean;
  progress: boolean;
}

/** Register the `download` command. */
export function register(program: Command): void {
  program
    .command('download')
    .description('Download a model (config, tokenizer, safetensors weights) from the Hugging Face Hub')
    .argument('<hf-model-id>', 'model id, e.g. openai-community/gpt2')
    .option('--dir <dir>', `target directory (default: ${defaultModelDir('owner/name').replace(/owner__name$/, '<owner>__<name>')})`)
    .option('--revision <rev>', 'branch, tag or commit', 'main')
    .option('--endpoint <url>', 'hub base URL (default: $HF_ENDPOINT, else https://huggingface.co)')
    .option('--json', 'print the result as JSON on stdout')
    .option('--no-progress', 'do not draw a progress bar (it is only drawn when stderr is a terminal)')
    .addHelpText(
      'after',
      '\nEnvironment:\n' +
        '  HF_TOKEN        access token for private or gated repos (sent as a Bearer token)\n' +
        '  HF_ENDPOINT     hub mirror URL\n' +
        '  RELP_CACHE_DIR  cache root for the default --dir (default: $XDG_CACHE_HOME/relp or ~/.cache/relp)\n' +
        '\nInterrupted downloads resume where they stopped; finished files are verified (sha256) and skipped.',
    )
    .action(async (id: string, opts: DownloadCliOptions) => {
      const res = await downloadModel(id, {
        dir: opts.dir,
        revision: opts.revision,
        endpoint: opts.endpoint,
        progress: opts.progress ? undefined : false,
      });
      if (opts.json) {
        process.stdout.write(JSON.stringify(res, null, 2) + '\n');
        return;
      }
      for (const f of res.files) process.stderr.write(`${f.status.padEnd(10)} ${f.name} (${f.size} bytes)\n`);
      process.stdout.write(res.dir + '\n');
    });
}
