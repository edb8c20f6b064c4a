import { execFileSync } from 'node:child_process';

/** The process tests run the built bundle, so build it once before any test file starts. */
export default function setup(): void {
  execFileSync(process.execPath, ['node_modules/tsup/dist/cli-default.js', '--silent'], { stdio: 'inherit' });
}
