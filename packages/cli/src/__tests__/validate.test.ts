import { runCli, SEED_MAPPING, seedMappingText, seedWith, tempDir } from './harness';

const withoutExamples = () => seedMappingText().replace(/^examples:[\s\S]*$/m, '');

const tmp = tempDir();

describe('crm-sync validate', () => {
  test('passes the seed contract with its examples', async () => {
    const r = await runCli(['validate', SEED_MAPPING]);
    expect(r).toEqual({ code: 0, out: `ok ${SEED_MAPPING} (5 examples)`, err: '' });
  });

  test('passes a mapping without examples, saying that examples would check its requests', async () => {
    const file = tmp.write('no-examples.yaml', withoutExamples());
    const r = await runCli(['validate', file]);
    expect(r).toEqual({ code: 0, out: `ok ${file} (0 examples: add some, so the requests themselves are checked (docs/writing-a-mapping.md, "Examples are golden tests"))`, err: '' });
  });

  test('finds a misspelt name in a template and an unknown function, with no example reaching them', async () => {
    const file = tmp.write('typos.yaml', withoutExamples().replace('"/crm/update/{{leadId}}"', '"/crm/update/{{lead_id}}"')
      .replace('"name": contact.name,', '"name": $titleCase(contact.name),'));
    const r = await runCli(['validate', file]);
    expect(r.code).toBe(1);
    expect(r.err.split('\n')).toEqual([
      `FAIL ${file} (ERR_MAPPING_EXPRESSION)`,
      expect.stringMatching(/^ {2}payload: \$titleCase at position \d+: no function of that name \(line 13\)$/),
      expect.stringMatching(/^ {2}endpoints\.update\.url: \{\{lead_id\}\} \(at 1:15\): there is no "lead_id"; a template can use contact, leadId, tenant, match, payload, vars, secrets \(line 20\)$/),
    ]);
  });

  test('names the file and the path of a wrong method, and what was expected', async () => {
    const file = tmp.write('wrong-method.yaml', seedWith('update: { method: POST', 'update: { method: FETCH'));
    const r = await runCli(['validate', file]);
    expect(r.code).toBe(1);
    expect(r.err).toContain(`FAIL ${file} (ERR_MAPPING_INVALID)`);
    expect(r.err).toMatch(/endpoints\.update\.method: must be one of "GET", "POST", "PUT", "PATCH", "DELETE" \(line \d+\)/);
  });

  test('names the expression and position of a JSONata syntax error', async () => {
    const file = tmp.write('bad-jsonata.yaml', seedWith('"name": contact.name,', '"name": contact.name +,'));
    const r = await runCli(['validate', file]);
    expect(r.code).toBe(1);
    expect(r.err).toContain('(ERR_MAPPING_EXPRESSION)');
    expect(r.err).toMatch(/ {2}payload: JSONata syntax error \S+ at position \d+/);
  });

  test('names the template of a Handlebars syntax error', async () => {
    const file = tmp.write('bad-template.yaml', seedWith('url: "/crm/update/{{leadId}}"', 'url: "/crm/update/{{leadId}"'));
    const r = await runCli(['validate', file]);
    expect(r.code).toBe(1);
    expect(r.err).toContain('(ERR_MAPPING_TEMPLATE)');
    expect(r.err).toMatch(/ {2}endpoints\.update\.url: Handlebars syntax error: .*line 1/);
  });

  test('shows the failing example and each difference', async () => {
    const file = tmp.write('bad-example.yaml', seedWith('custom_fields: { utm_campaign: diwali_2024 } }', 'custom_fields: { utm_campaign: diwali_2025 } }'));
    const r = await runCli(['validate', file]);
    expect(r.code).toBe(1);
    expect(r.err).toContain(`FAIL ${file}: 1 of 5 examples failed`);
    expect(r.err).toContain('examples[0] (new contact → fetch finds nothing → create)');
    expect(r.err).toContain('request 2: body differs');
    expect(r.err).toMatch(/expected .*"utm_campaign":"diwali_2025"/);
    expect(r.err).toMatch(/got {6}.*"utm_campaign":"diwali_2024"/);
  });

  test('checks every file and fails if any fails', async () => {
    const bad = tmp.write('unreadable-name.yaml', 'name: [');
    const r = await runCli(['validate', SEED_MAPPING, bad]);
    expect(r.code).toBe(1);
    expect(r.out).toBe(`ok ${SEED_MAPPING} (5 examples)`);
    expect(r.err).toContain(`FAIL ${bad} (ERR_MAPPING_SYNTAX)`);
  });

  test('loads a third-party adapter with --plugin', async () => {
    const plugin = tmp.write('plugin.js', `
      exports.adapter = { kind: 'auth', name: 'cli-test-token', apply(req, secret) { req.headers['X-Token'] = secret; } };`);
    const file = tmp.write('plugin-mapping.yaml', seedWith('auth: { adapter: auth-key, header: Auth-Key,', 'auth: { adapter: cli-test-token,')
      .replace(/Auth-Key: "\*\*\*"/g, 'X-Token: "***"'));
    const without = await runCli(['validate', file]);
    expect(without.code).toBe(1);
    expect(without.err).toContain('auth.adapter: no auth adapter named "cli-test-token" is registered');

    const withPlugin = await runCli(['validate', '--plugin', plugin, file]);
    expect(withPlugin).toEqual({ code: 0, out: `ok ${file} (5 examples)`, err: '' });
  });

  test('a plugin that cannot be loaded is a failure naming it', async () => {
    const r = await runCli(['validate', '--plugin', 'crm-sync-no-such-plugin', SEED_MAPPING]);
    expect(r.code).toBe(1);
    expect(r.err).toContain('cannot load plugin "crm-sync-no-such-plugin": Cannot find module');
  });

  test('without a file is a usage error', async () => {
    const r = await runCli(['validate']);
    expect(r.code).toBe(2);
    expect(r.err).toContain('missing <mapping>');
  });
});
