// bench/sdk_bench.mjs: the official TypeScript SDK clients (v2 @modelcontextprotocol/client, v1
// @modelcontextprotocol/sdk, pinned in tests/fixtures) making the same warm echo tool calls.
//
// node sdk_bench.mjs --sdk v1|v2 --url URL [--n N] [--api-key KEY] [--label L]
// Needs NODE_EXTRA_CA_CERTS for HTTPS. Prints "@ LABEL calls_s=... p50_us=... p99_us=...
// cpu_us=... rss_kb=... n=..." like the C benchmark programs (see bench/run.sh).
import { createRequire } from 'node:module';
import { pathToFileURL } from 'node:url';
import path from 'node:path';

const argv = process.argv.slice(2);
const opt = {};
for (let i = 0; i + 1 < argv.length; i += 2) opt[argv[i].replace(/^--/, '')] = argv[i + 1];
const n = Math.max(10, parseInt(opt.n ?? '500', 10));
const label = opt.label ?? `sdk_${opt.sdk}`;
// the packages live in tests/fixtures/node_modules: resolve them from there
const fixtures = path.resolve(path.dirname(new URL(import.meta.url).pathname), '../tests/fixtures/');
const req = createRequire(pathToFileURL(fixtures + '/package.json'));
const load = async (spec) => import(pathToFileURL(req.resolve(spec)).href);

const url = new URL(opt.url);
const requestInit = opt['api-key'] ? { headers: { Authorization: `Bearer ${opt['api-key']}` } } : undefined;
const info = { name: 'mcplink-bench', version: '1.0.0' };
let client, transport;
if (opt.sdk === 'v2') {
  const m = await load('@modelcontextprotocol/client');
  client = new m.Client(info);
  transport = new m.StreamableHTTPClientTransport(url, { requestInit });
} else if (opt.sdk === 'v1') {
  const { Client } = await load('@modelcontextprotocol/sdk/client/index.js');
  const { StreamableHTTPClientTransport } = await load('@modelcontextprotocol/sdk/client/streamableHttp.js');
  client = new Client(info);
  transport = new StreamableHTTPClientTransport(url, { requestInit });
} else {
  throw new Error('--sdk v1|v2');
}
await client.connect(transport);
const call = async () => {
  const r = await client.callTool({ name: 'echo', arguments: { text: 'hello' } });
  const text = r.structuredContent?.text ?? r.content?.[0]?.text;
  if (text !== 'hello') throw new Error('bad echo reply: ' + JSON.stringify(r));
};
for (let i = 0; i < Math.floor(n / 10) + 5; i++) await call(); // warm: connection, JIT
const lat = new Float64Array(n);
const cpu0 = process.cpuUsage();
const t0 = process.hrtime.bigint();
for (let i = 0; i < n; i++) {
  const s = process.hrtime.bigint();
  await call();
  lat[i] = Number(process.hrtime.bigint() - s) / 1000;
}
const wall = Number(process.hrtime.bigint() - t0) / 1000;
const cpu = process.cpuUsage(cpu0);
lat.sort();
const f = (x, d = 1) => x.toFixed(d);
process.stdout.write(`@ ${label} calls_s=${f(n / (wall / 1e6), 0)} p50_us=${f(lat[n >> 1])} ` +
  `p99_us=${f(lat[Math.floor(n * 99 / 100)])} cpu_us=${f((cpu.user + cpu.system) / n)} ` +
  `rss_kb=${process.resourceUsage().maxRSS} n=${n}\n`);
await client.close();
process.exit(0);
