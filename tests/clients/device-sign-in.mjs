// A person at the browser for team mode's tests: opens the page a device sign-in shows
// (RFC 8628), confirms the code, signs in as LOGIN on the provider's development pages and
// consents, as a person would by clicking. Prints "signed in" when the provider says so.
//
//   node device-sign-in.mjs PAGE LOGIN
const [page, login] = process.argv.slice(2);
const jar = new Map();
const cookies = () => [...jar].map(([k, v]) => `${k}=${v}`).join("; ");
const keep = (response) => {
  for (const line of response.headers.getSetCookie()) {
    const [pair] = line.split(";");
    const at = pair.indexOf("=");
    jar.set(pair.slice(0, at).trim(), pair.slice(at + 1));
  }
};

let url = page;
let request = { method: "GET" };
for (let step = 0; step < 20; step += 1) {
  if (process.env.DEBUG) console.error(request.method, url);
  const response = await fetch(url, { ...request, redirect: "manual", headers: { ...request.headers, cookie: cookies() } });
  keep(response);
  if (response.status >= 300 && response.status < 400) {
    url = new URL(response.headers.get("location"), url).href;
    request = { method: "GET" };
    continue;
  }
  const html = await response.text();
  if (html.includes("Sign-in Success")) {
    console.log("signed in");
    process.exit(0);
  }
  const form = html.match(/<form([^>]*)>([\s\S]*?)<\/form>/);
  const action = form?.[1].match(/action="([^"]*)"/)?.[1];
  if (!form || !action || !/method="post"/i.test(form[1])) {
    console.error(`no form and no success at ${url} (${response.status}): ${html.slice(0, 400)}`);
    process.exit(1);
  }
  const fields = new URLSearchParams();
  for (const [input] of form[2].matchAll(/<input[^>]*>/g)) {
    const name = input.match(/name="([^"]+)"/)?.[1];
    if (name) fields.set(name, input.match(/value="([^"]*)"/)?.[1] ?? "");
  }
  if (fields.has("login")) fields.set("login", login);
  if (fields.has("password")) fields.set("password", "any");
  if (form[1].includes("op.deviceConfirmForm")) fields.set("confirm", "yes");
  url = new URL(action.replaceAll("&amp;", "&"), url).href;
  request = { method: "POST", body: fields.toString(), headers: { "content-type": "application/x-www-form-urlencoded" } };
}
console.error("the sign-in took more than 20 steps");
process.exit(1);
