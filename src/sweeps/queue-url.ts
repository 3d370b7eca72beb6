/**
 * `--queue redis://[user:password@]HOST:PORT/NAME`: the Redis server and the BullMQ queue name.
 * `rediss://` connects with TLS.
 */
import type { ConnectionOptions } from 'bullmq';

/** A parsed queue URL. */
export interface QueueTarget {
  /** Queue name (the URL's path; default `relp`). */
  name: string;
  connection: ConnectionOptions;
  /** The URL without its password, for messages. */
  display: string;
}

/** Parse a queue URL with clear errors. */
export function parseQueueUrl(url: string): QueueTarget {
  let u: URL;
  try {
    u = new URL(url);
  } catch {
    throw new Error(`queue "${url}" is not a URL (expected redis://HOST:PORT/NAME)`);
  }
  if (u.protocol !== 'redis:' && u.protocol !== 'rediss:') throw new Error(`queue URL "${url}" must start with redis:// or rediss://`);
  if (!u.hostname) throw new Error(`queue URL "${url}" names no host`);
  const name = decodeURIComponent(u.pathname.replace(/^\//, '')) || 'relp';
  if (!/^[\w.-]+$/.test(name)) throw new Error(`queue name "${name}" may only use letters, digits, "_", "." and "-"`);
  const port = u.port ? Number(u.port) : 6379;
  const connection: ConnectionOptions = {
    host: u.hostname,
    port,
    ...(u.username ? { username: decodeURIComponent(u.username) } : {}),
    ...(u.password ? { password: decodeURIComponent(u.password) } : {}),
    ...(u.protocol === 'rediss:' ? { tls: {} } : {}),
    // BullMQ workers block on Redis; retry forever rather than fail a command while Redis restarts.
    maxRetriesPerRequest: null,
  };
  return { name, connection, display: `${u.protocol}//${u.hostname}:${port}/${name}` };
}

/** BullMQ job id of a shard (BullMQ ids may not contain ":"); `attempt` > 0 after a refused result. */
export function shardJobId(planHash: string, key: string, attempt = 0): string {
  return `${planHash.slice(0, 16)}.${key.replace(/[^\w.-]/g, (c) => (c === '/' ? '.' : '_'))}${attempt ? `.r${attempt}` : ''}`;
}
