// Drives kb-mcp with the official TypeScript MCP SDK client through every tool and resource,
// then the refused-argument cases (mistyped and unknown), and prints one JSON object with what
// each step got. Used by tests/e2e/test_real_clients.py; runnable by hand:
//   node drive.mjs http http://127.0.0.1:8080/mcp
//   node drive.mjs stdio '{"command": "...", "args": [...], "env": {...}}'
import { Client } from "@modelcontextprotocol/sdk/client/index.js";
import { StdioClientTransport } from "@modelcontextprotocol/sdk/client/stdio.js";
import { StreamableHTTPClientTransport } from "@modelcontextprotocol/sdk/client/streamableHttp.js";

const [mode, target] = process.argv.slice(2);
const transport =
  mode === "http"
    ? new StreamableHTTPClientTransport(new URL(target))
    : new StdioClientTransport({ ...JSON.parse(target), stderr: "ignore" });

const client = new Client({ name: "kb-mcp-e2e-ts", version: "1.0.0" });
await client.connect(transport);
const out = { protocol: transport.protocolVersion ?? null, steps: {} };
const text = (result) => (result.content ?? []).map((c) => c.text ?? "").join("\n");

async function call(name, args) {
  try {
    const result = await client.callTool({ name, arguments: args });
    return { error: Boolean(result.isError), text: text(result), data: result.structuredContent ?? null };
  } catch (exc) {
    return { thrown: String(exc) };
  }
}

const tools = await client.listTools();
out.tools = tools.tools.map((t) => t.name).sort();
const unique = `ts-${process.pid}-${Date.now()}`;
const added = await call("kb_add", {
  title: `TypeScript client ${unique}`,
  content: `Rotating database credentials with two login roles ${unique}.`,
  tags: ["e2e", "ts"],
  metadata: { client: "typescript" },
});
out.steps.kb_add = added;
const id = added.data?.id;
out.steps.kb_search = await call("kb_search", { query: unique, limit: 3 });
out.steps.kb_get = await call("kb_get", { id });
out.steps.kb_list = await call("kb_list", { limit: 2, tags: ["ts"] });
out.steps.kb_update = await call("kb_update", { id, tags: ["e2e", "ts", "updated"] });
const resources = await client.listResources();
out.resources = resources.resources.length;
const read = await client.readResource({ uri: `kb://documents/${id}` });
out.steps.resource_read = { text: read.contents.map((c) => c.text ?? "").join("\n") };
out.steps.mistyped = await call("kb_search", { query: "q", limit: "5" });
out.steps.mistyped_word = await call("kb_search", { query: "q", limit: "five" });
out.steps.unknown = await call("kb_search", { query: "q", bogus_arg: 1 });
out.steps.after_errors = await call("kb_get", { id });
out.steps.kb_delete = await call("kb_delete", { id });
// The batch and namespace tools, in a namespace of this run's own.
const space = `ts-${process.pid}`;
out.steps.kb_add_many = await call("kb_add_many", {
  namespace: space,
  documents: [
    { title: `Batch one ${unique}`, content: `First batch document ${unique}.`, tags: [], metadata: {} },
    { title: `Batch two ${unique}`, content: `Second batch document ${unique}.`, tags: [], metadata: {} },
  ],
});
out.steps.kb_namespaces = await call("kb_namespaces", {});
out.steps.kb_delete_namespace = await call("kb_delete_namespace", { namespace: space, confirm: space });
out.space = space;
await client.close();
process.stdout.write(JSON.stringify(out) + "\n");
