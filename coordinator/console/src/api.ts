// The public API, as the console calls it: same origin, the session cookie (HttpOnly, so
// never seen here), JSON in and out. Nothing here is unavailable to curl.

export interface Container {
  id: string;
  name: string;
  status: string;
  status_reason?: string;
  health?: string;
  hostname: string;
  instance_type: string;
  image: string;
  memory_mb: number;
  memory_used_mb?: number;
  cpu_millis: number;
  storage_gb: number;
  storage_used_gb?: number;
  created_at: string;
  ssh_enabled: boolean;
  ssh_command?: string;
  ssh_key_ids: number[];
  mount_paths: string[];
  env: Record<string, string>;
  ports: number[];
  external_ip?: string;
  internal_ip?: string;
  host_key?: string;
  region?: string;
  [field: string]: unknown;
}

export interface Session {
  user: string;
  admin: boolean;
  expires_at: string;
}

/** An answer that was not 2xx: the API's `error`, `message` and per-field `details`. */
export class ApiError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
    readonly details: Record<string, string[]> = {},
  ) {
    super(message);
  }
}

/** Calls the API; resolves with the JSON body of a 2xx answer, rejects with `ApiError`. */
export async function api<T = unknown>(method: string, path: string, body?: unknown): Promise<T> {
  let res: Response;
  try {
    res = await fetch(path, {
      method,
      credentials: "same-origin",
      headers: body === undefined ? {} : { "content-type": "application/json" },
      body: body === undefined ? undefined : JSON.stringify(body),
    });
  } catch (e) {
    throw new ApiError(0, "network", `the coordinator cannot be reached (${String(e)})`);
  }
  const text = await res.text();
  let json: any = null;
  try {
    json = text ? JSON.parse(text) : null;
  } catch {
    json = null;
  }
  if (!res.ok) {
    throw new ApiError(
      res.status,
      json?.error ?? `http_${res.status}`,
      json?.message ?? `${method} ${path}: ${res.status} ${res.statusText}`,
      json?.details ?? {},
    );
  }
  return json as T;
}

/** Every page of a listed collection (`next_cursor`). */
export async function all<T>(path: string, key: string): Promise<T[]> {
  const out: T[] = [];
  let cursor: string | undefined;
  do {
    const sep = path.includes("?") ? "&" : "?";
    const page: any = await api("GET", cursor ? `${path}${sep}cursor=${encodeURIComponent(cursor)}` : path);
    // Most lists are `{<key>: [...]}`; the images list is the seeds' bare array.
    const items = Array.isArray(page) ? page : page[key];
    if (!Array.isArray(items)) throw new ApiError(0, "unexpected", `${path}: no ${key} list in the answer`);
    out.push(...(items as T[]));
    cursor = page.next_cursor;
  } while (cursor);
  return out;
}

/** A WebSocket URL on this origin (the cookie goes with the handshake). */
export function wsUrl(path: string): string {
  const proto = location.protocol === "https:" ? "wss:" : "ws:";
  return `${proto}//${location.host}${path}`;
}

export const containerPath = (id: string) => `/compute/containers/${encodeURIComponent(id)}`;
