import { describe, expect, it } from "vitest";
import type { ScopeInfo } from "../bindings";
import { policyTable, readPolicy, weakened } from "./settings";

const scopes: ScopeInfo[] = [
  { name: "qc:live:read", description: "See live algorithms", default_policy: "allow", tools: ["read_live_algorithm"] },
  { name: "qc:live:execute", description: "Run and command live algorithms", default_policy: "ask", tools: ["stop_live_algorithm"] },
];

describe("policy table", () => {
  it("shows the policy in force and marks the defaults", () => {
    const table = policyTable(scopes, { "qc:live:read": "deny" });
    const selects = table.querySelectorAll<HTMLSelectElement>("select");
    expect(selects[0].value).toBe("deny");
    expect(selects[1].value).toBe("ask");
    expect(selects[1].selectedOptions[0].textContent).toBe("ask (default)");
  });

  it("saves only what differs from the defaults", () => {
    const table = policyTable(scopes, {});
    const selects = table.querySelectorAll<HTMLSelectElement>("select");
    expect(readPolicy(table, scopes)).toEqual({});
    selects[1].value = "deny";
    expect(readPolicy(table, scopes)).toEqual({ "qc:live:execute": "deny" });
  });
});

describe("weakening the policy", () => {
  it("names the scopes that would no longer ask", () => {
    expect(weakened(scopes, { "qc:live:execute": "allow" })).toEqual(["qc:live:execute"]);
    expect(weakened(scopes, { "qc:live:execute": "deny", "qc:live:read": "ask" })).toEqual([]);
  });
});
