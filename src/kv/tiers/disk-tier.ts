// The local disk tier: one file per value under a directory, at most `capBytes` of them, the least
// recently used dropped first. The index of what is stored (name -> bytes, in recency order) lives in
// memory, so containsRun never touches the disk; it is rebuilt from the directory on start, oldest
// modification time first (reads refresh a file's times, so the order survives a restart).
//
// A file's name is the SHA-256 of its key in hex: keys are case-sensitive base64url, and a case-insensitive
// file system (macOS, Windows) would merge two keys that differ only in case; hex names also stay clear of
// '.', '..' and ':'. Files are spread over 256 subdirectories by the name's first two digits so that no
// directory grows huge. A value is written to a temporary file, synced, then renamed into place: a reader
// never sees part of a value, and after a crash a file under a final name holds a whole value.
//
// One process owns a directory: its index is the only record of what the cap counts.
import { createHash } from 'node:crypto';
import { promises as fsp } from 'node:fs';
import { join } from 'node:path';
import type { BlockTier, BlockTierStats } from './tier.js';
import { checkTierKey } from './tier-key.js';

/** The file-system calls the tier makes; tests replace some to simulate a full or failing disk. */
export interface DiskTierFileSystem {
  /** Creates a directory and its parents; no error if it exists. */
  mkdir(path: string): Promise<void>;
  readdir(path: string): Promise<string[]>;
  stat(path: string): Promise<{ size: number; mtimeMs: number; isFile(): boolean }>;
  readFile(path: string): Promise<Uint8Array>;
  /** Writes `data` to a new file at `path` and makes its contents durable before resolving. */
  writeFile(path: string, data: Uint8Array): Promise<void>;
  rename(from: string, to: string): Promise<void>;
  unlink(path: string): Promise<void>;
  /** Sets the access and modification times to `time`. */
  touch(path: string, time: Date): Promise<void>;
}

export const nodeFileSystem: DiskTierFileSystem = {
  mkdir: async (path) => {
    await fsp.mkdir(path, { recursive: true });
  },
  readdir: (path) => fsp.readdir(path),
  stat: (path) => fsp.stat(path),
  readFile: (path) => fsp.readFile(path),
  writeFile: async (path, data) => {
    // 'wx': temporary names are unique, so an existing file means something else owns it.
    const file = await fsp.open(path, 'wx');
    try {
      await file.writeFile(data);
      // Without the sync, a power cut after the rename could leave a final name over unwritten blocks.
      await file.datasync();
    } finally {
      await file.close();
    }
  },
  rename: (from, to) => fsp.rename(from, to),
  unlink: (path) => fsp.unlink(path),
  touch: (path, time) => fsp.utimes(path, time, time),
};

export interface DiskTierOptions {
  /** Where the values live (created if missing). */
  directory: string;
  /** Most bytes of values kept. */
  capBytes: number;
  /** File-system calls to use instead of node:fs's (any subset). */
  fs?: Partial<DiskTierFileSystem>;
  /** One line per notable event (rebuilt at start, disk full, back to writing). */
  log?: (line: string) => void;
}

const SUBDIR = /^[0-9a-f]{2}$/;
const VALUE_FILE = /^[0-9a-f]{62}$/;
const TEMP_FILE = /^[0-9a-f]{62}\.\d+-\d+\.tmp$/;
/** Errors that mean the disk has no room: the write is skipped, not failed. */
const FULL_DISK = new Set(['ENOSPC', 'EDQUOT']);

function errorCode(error: unknown): string | undefined {
  const code = (error as { code?: unknown } | null)?.code;
  return typeof code === 'string' ? code : undefined;
}

export class DiskTier implements BlockTier {
  readonly name = 'disk';
  /** File name (64 hex digits) -> bytes; Map order is recency, least recently used first. */
  private readonly index = new Map<string, number>();
  /** Bytes of the values in the index, and of writes under way (counted against the cap before they land). */
  private storedBytes = 0;
  private reservedBytes = 0;
  /** Puts under way by name, so that a second put of the same key waits for the first. */
  private readonly writing = new Map<string, Promise<void>>();
  /** Files being deleted by name: a new write of the same name lands only after its deletion. */
  private readonly removing = new Map<string, Promise<void>>();
  /** Other work under way (time refreshes) that close() waits for. */
  private readonly background = new Set<Promise<unknown>>();
  private readonly madeDirs = new Set<string>();
  private tempCounter = 0;
  private diskFull = false;
  private closed = false;
  private readonly counters = { puts: 0, putBytes: 0, gets: 0, getBytes: 0, failures: 0, skippedWrites: 0 };

  private constructor(
    readonly directory: string,
    readonly capBytes: number,
    private readonly fs: DiskTierFileSystem,
    private readonly log: (line: string) => void,
  ) {}

  /** Opens (or creates) the tier's directory and rebuilds the index from the files in it. */
  static async open(options: DiskTierOptions): Promise<DiskTier> {
    if (typeof options.directory !== 'string' || options.directory === '') throw new RangeError('the disk tier needs a directory');
    if (!(Number.isSafeInteger(options.capBytes) && options.capBytes > 0)) {
      throw new RangeError(`the disk tier's size cap must be a positive whole number of bytes, got ${options.capBytes}`);
    }
    const tier = new DiskTier(options.directory, options.capBytes, { ...nodeFileSystem, ...options.fs }, options.log ?? (() => {}));
    await tier.rebuild();
    return tier;
  }

  /** Values held and their bytes. */
  usage(): { values: number; bytes: number } {
    return { values: this.index.size, bytes: this.storedBytes };
  }

  async containsRun(keys: readonly string[]): Promise<number> {
    this.checkOpen();
    let run = 0;
    for (const key of keys) {
      if (!this.index.has(fileName(key))) break;
      run++;
    }
    return run;
  }

  async get(keys: readonly string[]): Promise<(Uint8Array | undefined)[]> {
    this.checkOpen();
    const names = keys.map(fileName);
    try {
      return await Promise.all(names.map((name) => this.read(name)));
    } catch (e) {
      this.counters.failures++;
      throw e;
    }
  }

  put(key: string, value: Uint8Array): Promise<void> {
    try {
      this.checkOpen();
      const name = fileName(key);
      if (this.index.has(name)) {
        this.touchIndex(name);
        return Promise.resolve();
      }
      const under = this.writing.get(name);
      if (under) return under;
      const write = this.write(name, value).finally(() => this.writing.delete(name));
      this.writing.set(name, write);
      return write;
    } catch (e) {
      return Promise.reject(e);
    }
  }

  stats(): BlockTierStats {
    return { ...this.counters, up: !this.closed };
  }

  async close(): Promise<void> {
    this.closed = true;
    await Promise.allSettled([...this.writing.values(), ...this.removing.values(), ...this.background]);
  }

  private checkOpen(): void {
    if (this.closed) throw new Error('the disk tier is closed');
  }

  private pathOf(name: string): string {
    return join(this.directory, name.slice(0, 2), name.slice(2));
  }

  private touchIndex(name: string): void {
    const bytes = this.index.get(name);
    if (bytes === undefined) return;
    this.index.delete(name);
    this.index.set(name, bytes);
  }

  private async read(name: string): Promise<Uint8Array | undefined> {
    const bytes = this.index.get(name);
    if (bytes === undefined) return undefined;
    const path = this.pathOf(name);
    let value: Uint8Array;
    try {
      value = await this.fs.readFile(path);
    } catch (e) {
      if (errorCode(e) !== 'ENOENT') throw e;
      // Deleted behind our back: forget it.
      this.forget(name);
      return undefined;
    }
    if (value.byteLength !== bytes) {
      // Files are renamed into place whole and never rewritten, so another size means someone else wrote it.
      this.log(`disk tier: ${path} is ${value.byteLength} bytes, ${bytes} were written; dropped`);
      this.forget(name);
      this.remove(name).catch(() => {});
      return undefined;
    }
    this.touchIndex(name);
    // Persist the recency for the next start's rebuild; a failure only costs ordering.
    this.inBackground(this.fs.touch(path, new Date()).catch(() => {}));
    this.counters.gets++;
    this.counters.getBytes += bytes;
    return value;
  }

  private forget(name: string): void {
    const bytes = this.index.get(name);
    if (bytes === undefined) return;
    this.index.delete(name);
    this.storedBytes -= bytes;
  }

  private async write(name: string, value: Uint8Array): Promise<void> {
    const size = value.byteLength;
    // Even after dropping every stored value, the value (and the writes under way) would not fit.
    if (this.reservedBytes + size > this.capBytes) {
      this.counters.skippedWrites++;
      return;
    }
    const victims: string[] = [];
    for (const [old, bytes] of this.index) {
      if (this.storedBytes + this.reservedBytes + size <= this.capBytes) break;
      this.index.delete(old);
      this.storedBytes -= bytes;
      victims.push(old);
    }
    this.reservedBytes += size;
    const path = this.pathOf(name);
    const temp = `${path}.${process.pid}-${this.tempCounter++}.tmp`;
    let landed = false;
    try {
      await Promise.all(victims.map((v) => this.remove(v)));
      await this.makeDir(name.slice(0, 2));
      await this.fs.writeFile(temp, value);
      await this.removing.get(name)?.catch(() => {});
      await this.fs.rename(temp, path);
      landed = true;
    } catch (e) {
      await this.unlinkIfPresent(temp).catch(() => {});
      if (FULL_DISK.has(errorCode(e) ?? '')) {
        this.counters.skippedWrites++;
        if (!this.diskFull) this.log(`disk tier: the disk under ${this.directory} is full (${errorCode(e)}); values are not written to it until there is room`);
        this.diskFull = true;
        return;
      }
      this.counters.failures++;
      throw e;
    } finally {
      this.reservedBytes -= size;
      if (landed) {
        this.index.set(name, size);
        this.storedBytes += size;
      }
    }
    if (this.diskFull) this.log(`disk tier: writing to ${this.directory} again`);
    this.diskFull = false;
    this.counters.puts++;
    this.counters.putBytes += size;
  }

  /** Deletes the file of `name` (already out of the index). */
  private remove(name: string): Promise<void> {
    const earlier = this.removing.get(name);
    if (earlier) return earlier;
    const removal = this.unlinkIfPresent(this.pathOf(name)).finally(() => this.removing.delete(name));
    this.removing.set(name, removal);
    return removal;
  }

  private async makeDir(sub: string): Promise<void> {
    if (this.madeDirs.has(sub)) return;
    await this.fs.mkdir(join(this.directory, sub));
    this.madeDirs.add(sub);
  }

  private async unlinkIfPresent(path: string): Promise<void> {
    try {
      await this.fs.unlink(path);
    } catch (e) {
      if (errorCode(e) !== 'ENOENT') throw e;
    }
  }

  private inBackground(work: Promise<unknown>): void {
    const tracked = work.catch(() => {}).finally(() => this.background.delete(tracked));
    this.background.add(tracked);
  }

  /** Indexes the values already in the directory (oldest first), deletes stray temporary files, and trims to the cap. */
  private async rebuild(): Promise<void> {
    await this.fs.mkdir(this.directory);
    const found: { name: string; size: number; mtimeMs: number }[] = [];
    let strays = 0;
    for (const sub of (await this.fs.readdir(this.directory)).filter((s) => SUBDIR.test(s))) {
      let names: string[];
      try {
        names = await this.fs.readdir(join(this.directory, sub));
      } catch (e) {
        if (errorCode(e) === 'ENOTDIR') continue;
        throw e;
      }
      this.madeDirs.add(sub);
      await Promise.all(
        names.map(async (file) => {
          const path = join(this.directory, sub, file);
          if (TEMP_FILE.test(file)) {
            // Left by a process that stopped mid-write: never a whole value.
            await this.unlinkIfPresent(path);
            strays++;
          } else if (VALUE_FILE.test(file)) {
            const s = await this.fs.stat(path);
            if (s.isFile()) found.push({ name: sub + file, size: s.size, mtimeMs: s.mtimeMs });
          }
        }),
      );
    }
    found.sort((a, b) => a.mtimeMs - b.mtimeMs);
    for (const f of found) {
      this.index.set(f.name, f.size);
      this.storedBytes += f.size;
    }
    let trimmed = 0;
    for (const [name] of this.index) {
      if (this.storedBytes <= this.capBytes) break;
      this.forget(name);
      await this.remove(name);
      trimmed++;
    }
    if (found.length > 0 || strays > 0) {
      const parts = [`disk tier: ${this.index.size} values (${this.storedBytes} bytes) found in ${this.directory}`];
      if (trimmed > 0) parts.push(`${trimmed} older ones deleted to fit the cap of ${this.capBytes} bytes`);
      if (strays > 0) parts.push(`${strays} unfinished writes deleted`);
      this.log(parts.join('; '));
    }
  }
}

/** The file name of `key` (checked): 64 hex digits of its SHA-256. */
function fileName(key: string): string {
  checkTierKey(key);
  return createHash('sha256').update(key).digest('hex');
}
