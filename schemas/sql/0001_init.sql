-- Initial schema. Everything lives in the `dmt` schema so it sits apart from
-- other EMF services in a shared database. Every table of tenant data carries
-- tenant_id (DMT's default tenant is the empty string). Names that DMT compares
-- case-insensitively (citext there) are text here with unique indexes on
-- lower(name), so no extension is needed in a shared database.

-- Devices: the rows DMT's MPS keeps, plus what RPS writes into deviceinfo.
CREATE TABLE dmt.devices (
  guid              uuid         NOT NULL,
  tenant_id         varchar(64)  NOT NULL DEFAULT '',
  hostname          varchar(256),
  tags              text[]       NOT NULL DEFAULT '{}',
  mps_instance      text,
  connection_status boolean      NOT NULL DEFAULT false,
  mps_username      text,
  friendly_name     varchar(256),
  dns_suffix        varchar(256),
  last_connected    timestamptz,
  last_seen         timestamptz,
  last_disconnected timestamptz,
  device_info       jsonb,
  created_at        timestamptz  NOT NULL DEFAULT now(),
  PRIMARY KEY (guid, tenant_id),
  UNIQUE (guid)
);
CREATE INDEX devices_tenant_idx ON dmt.devices (tenant_id);
CREATE INDEX devices_instance_idx ON dmt.devices (mps_instance) WHERE mps_instance IS NOT NULL;
CREATE INDEX devices_tags_idx ON dmt.devices USING gin (tags);

-- Secrets (embedded back end): one encrypted JSON object per path, laid out as
-- DMT's Vault paths (devices/<guid>, profiles/<name>, certs/<domain>, ...).
CREATE TABLE dmt.secrets (
  tenant_id  varchar(64) NOT NULL DEFAULT '',
  path       text        NOT NULL,
  key_id     text        NOT NULL,
  nonce      bytea       NOT NULL,
  ciphertext bytea       NOT NULL,
  updated_at timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (tenant_id, path)
);
CREATE INDEX secrets_key_idx ON dmt.secrets (key_id);

-- Audit and event log: every event published on MQTT is also kept here so a
-- consumer that was down can catch up by time range.
CREATE TABLE dmt.events (
  id         uuid         PRIMARY KEY,
  tenant_id  varchar(64)  NOT NULL DEFAULT '',
  guid       uuid,
  ts         timestamptz  NOT NULL,
  kind       varchar(32)  NOT NULL,
  action     varchar(64),
  outcome    varchar(16)  NOT NULL,
  requester  varchar(256),
  source     varchar(128),
  message    varchar(1024),
  data       jsonb
);
CREATE INDEX events_tenant_ts_idx ON dmt.events (tenant_id, ts);
CREATE INDEX events_guid_ts_idx ON dmt.events (guid, ts) WHERE guid IS NOT NULL;

-- RPS objects, as DMT's RPS stores them (rps-activation.md §4.1).
CREATE TABLE dmt.ciraconfigs (
  tenant_id             varchar(64)  NOT NULL DEFAULT '',
  cira_config_name      text         NOT NULL,
  mps_server_address    varchar(256),
  mps_port              integer,
  user_name             varchar(40),
  password              varchar(63),
  common_name           varchar(256),
  server_address_format integer,
  auth_method           integer,
  mps_root_certificate  text,
  proxydetails          text,
  creation_date         timestamptz  NOT NULL DEFAULT now(),
  PRIMARY KEY (tenant_id, cira_config_name)
);
CREATE UNIQUE INDEX ciraconfigs_name_ci ON dmt.ciraconfigs (tenant_id, lower(cira_config_name));

CREATE TABLE dmt.ieee8021xconfigs (
  tenant_id        varchar(64)  NOT NULL DEFAULT '',
  profile_name     text         NOT NULL,
  auth_protocol    integer,
  servername       varchar(255),
  domain           varchar(255),
  username         varchar(255),
  password         varchar(255),
  roaming_identity varchar(255),
  active_in_s0     boolean,
  pxe_timeout      integer,
  wired_interface  boolean      NOT NULL,
  creation_date    timestamptz  NOT NULL DEFAULT now(),
  PRIMARY KEY (tenant_id, profile_name)
);
CREATE UNIQUE INDEX ieee8021xconfigs_name_ci ON dmt.ieee8021xconfigs (tenant_id, lower(profile_name));

CREATE TABLE dmt.wirelessconfigs (
  tenant_id              varchar(64)  NOT NULL DEFAULT '',
  wireless_profile_name  text         NOT NULL,
  authentication_method  integer,
  encryption_method      integer,
  ssid                   varchar(32),
  psk_value              integer,
  psk_passphrase         varchar(63),
  link_policy            integer[],
  ieee8021x_profile_name text,
  creation_date          timestamptz  NOT NULL DEFAULT now(),
  created_by             varchar(40),
  PRIMARY KEY (tenant_id, wireless_profile_name),
  FOREIGN KEY (tenant_id, ieee8021x_profile_name) REFERENCES dmt.ieee8021xconfigs (tenant_id, profile_name)
);
CREATE UNIQUE INDEX wirelessconfigs_name_ci ON dmt.wirelessconfigs (tenant_id, lower(wireless_profile_name));

CREATE TABLE dmt.profiles (
  tenant_id                     varchar(64)  NOT NULL DEFAULT '',
  profile_name                  text         NOT NULL,
  activation                    varchar(20)  NOT NULL,
  amt_password                  varchar(40),
  generate_random_password      boolean      NOT NULL DEFAULT false,
  cira_config_name              text,
  mebx_password                 varchar(40),
  generate_random_mebx_password boolean      NOT NULL DEFAULT false,
  tags                          text[],
  dhcp_enabled                  boolean,
  ip_sync_enabled               boolean,
  local_wifi_sync_enabled       boolean,
  uefi_wifi_sync_enabled        boolean,
  tls_mode                      integer,
  tls_signing_authority         varchar(40),
  user_consent                  varchar(7),
  ider_enabled                  boolean,
  kvm_enabled                   boolean,
  sol_enabled                   boolean,
  ieee8021x_profile_name        text,
  creation_date                 timestamptz  NOT NULL DEFAULT now(),
  created_by                    varchar(40),
  PRIMARY KEY (tenant_id, profile_name),
  FOREIGN KEY (tenant_id, cira_config_name) REFERENCES dmt.ciraconfigs (tenant_id, cira_config_name),
  FOREIGN KEY (tenant_id, ieee8021x_profile_name) REFERENCES dmt.ieee8021xconfigs (tenant_id, profile_name)
);
CREATE UNIQUE INDEX profiles_name_ci ON dmt.profiles (tenant_id, lower(profile_name));

CREATE TABLE dmt.profiles_wirelessconfigs (
  tenant_id             varchar(64) NOT NULL DEFAULT '',
  wireless_profile_name text        NOT NULL,
  profile_name          text        NOT NULL,
  priority              integer     NOT NULL,
  creation_date         timestamptz NOT NULL DEFAULT now(),
  created_by            varchar(40),
  PRIMARY KEY (tenant_id, wireless_profile_name, profile_name, priority),
  FOREIGN KEY (tenant_id, wireless_profile_name) REFERENCES dmt.wirelessconfigs (tenant_id, wireless_profile_name),
  FOREIGN KEY (tenant_id, profile_name) REFERENCES dmt.profiles (tenant_id, profile_name) ON DELETE CASCADE
);

CREATE TABLE dmt.domains (
  tenant_id                        varchar(64) NOT NULL DEFAULT '',
  name                             text        NOT NULL,
  domain_suffix                    text        NOT NULL,
  provisioning_cert                text,
  provisioning_cert_storage_format varchar(40),
  provisioning_cert_key            text,
  expiration_date                  timestamptz,
  creation_date                    timestamptz NOT NULL DEFAULT now(),
  created_by                       varchar(40),
  PRIMARY KEY (tenant_id, name)
);
CREATE UNIQUE INDEX domains_name_ci ON dmt.domains (tenant_id, lower(name));
CREATE UNIQUE INDEX domains_suffix_ci ON dmt.domains (tenant_id, lower(domain_suffix));

CREATE TABLE dmt.proxyconfigs (
  tenant_id          varchar(64)  NOT NULL DEFAULT '',
  proxy_config_name  text         NOT NULL,
  address            text         NOT NULL,
  info_format        integer      NOT NULL,
  port               integer      NOT NULL,
  network_dns_suffix varchar(192),
  creation_date      timestamptz  NOT NULL DEFAULT now(),
  PRIMARY KEY (tenant_id, proxy_config_name)
);
CREATE UNIQUE INDEX proxyconfigs_name_ci ON dmt.proxyconfigs (tenant_id, lower(proxy_config_name));
CREATE UNIQUE INDEX proxyconfigs_addr_ci ON dmt.proxyconfigs (tenant_id, lower(address), port);

CREATE TABLE dmt.profiles_proxyconfigs (
  tenant_id         varchar(64) NOT NULL DEFAULT '',
  proxy_config_name text        NOT NULL,
  profile_name      text        NOT NULL,
  priority          integer     NOT NULL,
  creation_date     timestamptz NOT NULL DEFAULT now(),
  created_by        varchar(40),
  PRIMARY KEY (tenant_id, proxy_config_name, profile_name, priority),
  FOREIGN KEY (tenant_id, proxy_config_name) REFERENCES dmt.proxyconfigs (tenant_id, proxy_config_name),
  FOREIGN KEY (tenant_id, profile_name) REFERENCES dmt.profiles (tenant_id, profile_name) ON DELETE CASCADE
);
