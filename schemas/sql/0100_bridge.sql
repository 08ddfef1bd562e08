-- REST bridge support (numbers 0100-0199 belong to the bridge).
--
-- dmt.js_ts renders a timestamp as JavaScript's Date.toJSON() does
-- ("2024-01-31T12:00:00.000Z"), the form DMT's REST API returns, so the bridge
-- can let PostgreSQL build DMT's JSON bodies directly.
CREATE FUNCTION dmt.js_ts(t timestamptz) RETURNS text
  LANGUAGE sql STABLE PARALLEL SAFE
  AS $$ SELECT to_char(t AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"') $$;

-- Device lists page by guid within a tenant (GET /api/v1/devices?$top=&$skip=).
CREATE INDEX devices_tenant_guid_idx ON dmt.devices (tenant_id, guid);

-- Event catch-up by kind (GET /api/v1/events?kind=&since=).
CREATE INDEX events_tenant_kind_ts_idx ON dmt.events (tenant_id, kind, ts);
