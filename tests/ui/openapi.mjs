// Validate an OpenAPI document against the OpenAPI 3.1 schema (and its
// references), as a client generator would read it.
//
//   node openapi.mjs URL
import SwaggerParser from "@apidevtools/swagger-parser";

const [url] = process.argv.slice(2);
try {
  const doc = await (await fetch(url)).json();
  const api = await SwaggerParser.validate(doc);
  console.log(JSON.stringify({ ok: true, openapi: api.openapi, paths: Object.keys(api.paths).length }));
} catch (e) {
  console.log(JSON.stringify({ ok: false, error: String(e.message || e) }));
  process.exitCode = 1;
}
