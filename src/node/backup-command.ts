/**
 * `ticket-system backup PATH`: a consistent copy of the SQLite database in
 * DATA_DIR, taken while the service sells (SQLite's online backup API reads
 * committed pages beside the writer; nothing waits for it). The copy is
 * written under a temporary name and renamed into place once complete, so a
 * backup cut short never looks like one.
 */
import { existsSync } from 'node:fs';
import { open, stat } from 'node:fs/promises';
import { dirname, join, resolve } from 'node:path';
import process from 'node:process';
import type { Config } from '../config.ts';
import { openSqlite } from './sqlite-binding.ts';
import { DATABASE_FILE } from './sqlite-stock-store.ts';

/** Copies DATA_DIR's database to `target`; exits 0 with what it copied, or 1 (2 for bad arguments) saying why. */
export async function backupCommand(config: Config, target: string | undefined): Promise<never> {
  if (target === undefined || target.trim() === '') {
    process.stderr.write('usage: ticket-system backup PATH  (copies DATA_DIR/ticket-system.db to PATH)\n');
    process.exit(2);
  }
  const source = resolve(config.DATA_DIR, DATABASE_FILE);
  const destination = resolve(target);
  try {
    if (config.STOCK_STORE !== 'sqlite') throw new Error(`STOCK_STORE=${config.STOCK_STORE} has no database to copy`);
    if (!existsSync(source)) throw new Error(`there is no database at ${source} (DATA_DIR=${config.DATA_DIR})`);
    if (existsSync(destination)) throw new Error(`${destination} already exists; backup never overwrites`);
    const started = performance.now();
    const db = await openSqlite(source, { readonly: true });
    try {
      await db.backup(destination);
    } finally {
      db.close();
    }
    await syncDirectory(dirname(destination));
    const { size } = await stat(destination);
    const ms = Math.round(performance.now() - started);
    process.stdout.write(`backed up ${source} to ${destination} (${size} bytes, ${ms} ms)\n`);
    process.exit(0);
  } catch (error) {
    process.stderr.write(`backup failed: ${error instanceof Error ? error.message : String(error)}\n`);
    process.exit(1);
  }
}

/** Makes the rename that put the copy in place durable. */
async function syncDirectory(dir: string): Promise<void> {
  const handle = await open(join(dir, '.'), 'r');
  try {
    await handle.sync();
  } finally {
    await handle.close();
  }
}
