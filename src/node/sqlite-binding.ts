/**
 * One small interface over the SQLite bindings of the three runtimes:
 * `bun:sqlite` on Bun, the built-in `node:sqlite` on Deno and on Node 22.13+
 * (Node 24 is the container image's runtime), and `better-sqlite3` on older
 * Node (20, this project's floor), where it is an optional dependency built
 * at install. All three are synchronous and take `?` parameters.
 */
import { rename } from 'node:fs/promises';

export type SqlValue = string | number | null;
export type SqlRow = Record<string, SqlValue>;

export interface SqliteStatement {
  run(...params: SqlValue[]): { changes: number | bigint };
  get(...params: SqlValue[]): SqlRow | undefined;
  all(...params: SqlValue[]): SqlRow[];
}

export interface SqliteDatabase {
  /** Which binding this is: `bun:sqlite`, `node:sqlite` or `better-sqlite3`. */
  readonly driver: SqliteDriver;
  exec(sql: string): void;
  prepare(sql: string): SqliteStatement;
  /**
   * Copies the database to `path` consistently while others write to it
   * (SQLite's online backup API where the binding has it, else VACUUM INTO).
   */
  backup(path: string): Promise<void>;
  close(): void;
}

export const SQLITE_DRIVERS = ['bun:sqlite', 'node:sqlite', 'better-sqlite3'] as const;
export type SqliteDriver = (typeof SQLITE_DRIVERS)[number];

/** The parts of each binding this module uses (none of them ships types for Node 20). */
interface NativeStatement {
  run(...params: SqlValue[]): { changes: number | bigint };
  get(...params: SqlValue[]): SqlRow | null | undefined;
  all(...params: SqlValue[]): SqlRow[];
}
interface NativeDatabase {
  exec(sql: string): unknown;
  prepare(sql: string): NativeStatement;
  close(): unknown;
  backup?(path: string): Promise<unknown>;
}

/**
 * Opens (creating it unless `readonly`) the database at `path` with the
 * binding of the runtime this runs on, or with `driver` when given.
 *
 * @example
 * const db = await openSqlite('./data/ticket-system.db');
 * db.prepare('SELECT sqlite_version() AS version').get(); // { version: '3.53.2' }
 */
export async function openSqlite(
  path: string,
  options: { readonly?: boolean; driver?: SqliteDriver } = {},
): Promise<SqliteDatabase> {
  const readonly = options.readonly ?? false;
  const driver = options.driver ?? (await defaultDriver());
  switch (driver) {
    case 'bun:sqlite': {
      const { Database } = (await importModule('bun:sqlite')) as {
        Database: new (path: string, options: object) => NativeDatabase;
      };
      const db = new Database(path, readonly ? { readonly: true } : { create: true, readwrite: true });
      return wrap(driver, db, (target) => vacuumInto(db, target));
    }
    case 'node:sqlite': {
      const sqlite = (await importModule('node:sqlite')) as {
        DatabaseSync: new (path: string, options: object) => NativeDatabase;
        backup?: (db: NativeDatabase, path: string) => Promise<unknown>;
      };
      const db = new sqlite.DatabaseSync(path, { readOnly: readonly });
      const backup = sqlite.backup;
      return wrap(driver, db, (target) => (backup ? backup(db, target) : vacuumInto(db, target)));
    }
    case 'better-sqlite3': {
      const { default: Database } = (await importModule('better-sqlite3')) as {
        default: new (path: string, options: object) => NativeDatabase;
      };
      const db = new Database(path, { readonly, fileMustExist: readonly });
      return wrap(driver, db, (target) => db.backup!(target));
    }
  }
}

/** The binding this runtime has: Bun's own, else the built-in node:sqlite, else better-sqlite3. */
async function defaultDriver(): Promise<SqliteDriver> {
  if ('Bun' in globalThis) return 'bun:sqlite';
  try {
    await importModule('node:sqlite');
    return 'node:sqlite';
  } catch {
    return 'better-sqlite3';
  }
}

/** A specifier in a variable: neither TypeScript nor the bundler tries to resolve the other runtimes' modules. */
function importModule(specifier: string): Promise<unknown> {
  return import(specifier);
}

function wrap(driver: SqliteDriver, db: NativeDatabase, backup: (path: string) => Promise<unknown>): SqliteDatabase {
  return {
    driver,
    exec: (sql) => void db.exec(sql),
    prepare(sql) {
      const statement = db.prepare(sql);
      return {
        run: (...params) => statement.run(...params),
        get: (...params) => statement.get(...params) ?? undefined,
        all: (...params) => statement.all(...params),
      };
    },
    backup: async (path) => {
      // Into a temporary name first: a copy cut short (a kill, a full disk) never looks like a backup.
      const partial = `${path}.partial-${process.pid}`;
      await backup(partial);
      // A copy of a WAL database is one too; as a rollback-journal database it is one file to keep.
      const copy = await openSqlite(partial, { driver });
      try {
        copy.exec('PRAGMA journal_mode = DELETE');
      } finally {
        copy.close();
      }
      await rename(partial, path);
    },
    close: () => void db.close(),
  };
}

async function vacuumInto(db: NativeDatabase, path: string): Promise<void> {
  db.prepare('VACUUM INTO ?').run(path);
}
