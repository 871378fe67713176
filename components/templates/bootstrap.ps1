# --- fme-aa node bootstrap body (the variables above are rendered per node by components/bootstrap.py)
# Runs as LocalSystem, started by the user data's stub under EC2Launch v2 at every boot until
# the node is configured, then only says so. Each step checks its own state first, so a boot
# that stopped half-way finishes on the next one. The order follows Safe's
# config/powershell/config_fmeflow_confd.ps1 (safesoftware/fme-server-iac-templates).
# Secrets: the RDS master password is read from Secrets Manager into a variable, the FME role's
# password is generated here; neither is logged nor put on a command line.
Set-StrictMode -Version 2.0
$ErrorActionPreference = 'Stop'
$ProgressPreference = 'SilentlyContinue'
$StateDir = Join-Path $env:ProgramData 'fme-aa'
$LogFile = Join-Path $StateDir 'bootstrap.log'
$DoneFile = Join-Path $StateDir 'bootstrap.done'
New-Item -ItemType Directory -Force -Path $StateDir | Out-Null

function Write-Log([string]$Message) {
  $stamp = (Get-Date).ToUniversalTime().ToString('yyyy-MM-ddTHH:mm:ssZ')
  $line = '{0} [fme-aa {1}] {2}' -f $stamp, $NodeName, $Message
  Add-Content -LiteralPath $LogFile -Value $line
  Write-Host $line
}

function Stop-Bootstrap([string]$Message) {
  Write-Log "ERROR: $Message (log: $LogFile)"
  exit 1
}

function Invoke-Step([string]$Name, [scriptblock]$Action) {
  Write-Log "step: $Name"
  & $Action
}

# A native program's exit code and output; stderr must not become a terminating error here.
function Invoke-Native([string]$Program, [string[]]$Arguments, [string]$InputText = '') {
  if (-not (Get-Command $Program -ErrorAction SilentlyContinue)) { Stop-Bootstrap "$Program not found" }
  $ErrorActionPreference = 'Continue'
  if ($InputText) {
    $output = $InputText | & $Program @Arguments 2>&1
  } else {
    $output = & $Program @Arguments 2>&1
  }
  [pscustomobject]@{ Code = $LASTEXITCODE; Output = ($output | Out-String).Trim() }
}

function Write-Utf8File([string]$Path, [string]$Text) {
  [System.IO.File]::WriteAllText($Path, $Text, (New-Object System.Text.UTF8Encoding($false)))
}

function New-Password {
  $bytes = New-Object byte[] 24
  $random = [System.Security.Cryptography.RandomNumberGenerator]::Create()
  $random.GetBytes($bytes)
  $random.Dispose()
  -join ($bytes | ForEach-Object { $_.ToString('x2') })
}

# IMDSv2 only: every metadata read carries a session token (the instance requires it).
function Get-Metadata([string]$Path) {
  $ttl = @{ 'X-aws-ec2-metadata-token-ttl-seconds' = '300' }
  $token = Invoke-RestMethod -Method Put -Uri 'http://169.254.169.254/latest/api/token' -Headers $ttl -UseBasicParsing
  $headers = @{ 'X-aws-ec2-metadata-token' = $token }
  Invoke-RestMethod -Uri ('http://169.254.169.254/latest/meta-data/' + $Path) -Headers $headers -UseBasicParsing
}

# --- 1. the release the image really has ---------------------------------------------------------
function Confirm-Release {
  if (-not (Test-Path -LiteralPath $VersionFile)) {
    Stop-Bootstrap "$VersionFile not found: is FME installed in $InstallDir (fme.installDir)?"
  }
  $pattern = '^\s*VERSION\s*=\s*(\d+)\.(\d+)'
  $line = Get-Content -LiteralPath $VersionFile | Where-Object { $_ -match $pattern } | Select-Object -First 1
  if (-not $line) { Stop-Bootstrap "$VersionFile has no VERSION= line" }
  $null = $line -match $pattern
  $installed = '{0}.{1}' -f $Matches[1], $Matches[2]
  if ($installed -ne $FmeVersion) {
    Stop-Bootstrap ('the image has FME {0} but fme.version is {1}: set fme.version to {0}' -f $installed, $FmeVersion)
  }
  Write-Log "the image has FME $installed, as fme.version says"
}

# --- 2. FME stopped; the bundled PostgreSQL off for good (FME uses this node's RDS) ---------------
function Stop-Fme {
  foreach ($name in $FmeServices) {
    $service = Get-Service -Name $name -ErrorAction SilentlyContinue
    if (-not $service) {
      Stop-Bootstrap "Windows service '$name' not found: a node needs FME $FmeVersion's Core, web services and Engines installed together"
    }
    if ($service.Status -ne 'Stopped') { Stop-Service -Name $name -Force }
  }
  $database = Get-Service -Name $FmeDatabaseService -ErrorAction SilentlyContinue
  if ($database) {
    # Safe's Packer image removes Core's dependency on the bundled database the same way.
    $core = Get-Service -Name $FmeServices[0]
    if ($core.ServicesDependedOn | Where-Object { $_.Name -eq $FmeDatabaseService }) {
      $result = Invoke-Native 'sc.exe' @('config', $FmeServices[0], 'depend=', '/')
      if ($result.Code -ne 0) { Stop-Bootstrap "sc.exe could not remove the dependency: $($result.Output)" }
    }
    if ($database.Status -ne 'Stopped') { Stop-Service -Name $FmeDatabaseService -Force }
    Set-Service -Name $FmeDatabaseService -StartupType Disabled
  }
}

# --- 3. this node's own EBS volume: online, NTFS once, its drive letter, seeded once --------------
function Mount-Share {
  $letter = $SystemSharePath.Substring(0, 1).ToUpper()
  # On Nitro instances the disk's serial number carries the volume id without its dash (AWS:
  # "Map NVMe disks on Amazon EC2 Windows instance to volumes").
  $serial = $ShareVolumeId.Replace('-', '')
  $disk = $null
  for ($try = 0; $try -lt 60 -and -not $disk; $try++) {
    $disk = Get-Disk | Where-Object { ($_.SerialNumber -replace '_.*$', '').Trim() -eq $serial } | Select-Object -First 1
    if (-not $disk) { Start-Sleep -Seconds 5 }
  }
  if (-not $disk) { Stop-Bootstrap "EBS volume $ShareVolumeId did not appear within 300 s" }
  if ($disk.IsOffline) { Set-Disk -Number $disk.Number -IsOffline $false }
  if ($disk.IsReadOnly) { Set-Disk -Number $disk.Number -IsReadOnly $false }
  if ((Get-Disk -Number $disk.Number).PartitionStyle -eq 'RAW') {
    Initialize-Disk -Number $disk.Number -PartitionStyle GPT
  }
  # (An empty disk has no partition yet: not an error here.)
  $partition = Get-Partition -DiskNumber $disk.Number -ErrorAction SilentlyContinue |
    Where-Object { $_.Type -eq 'Basic' } | Select-Object -First 1
  if (-not $partition) { $partition = New-Partition -DiskNumber $disk.Number -UseMaximumSize }
  $volume = Get-Volume -Partition $partition -ErrorAction SilentlyContinue
  $fileSystem = ''
  if ($volume) { $fileSystem = $volume.FileSystem }
  if (-not $fileSystem) {
    Write-Log "formatting EBS volume $ShareVolumeId as NTFS (it has no file system yet)"
    Format-Volume -Partition $partition -FileSystem NTFS -NewFileSystemLabel ('fme-aa-' + $NodeName) -Confirm:$false | Out-Null
  } elseif ($fileSystem -ne 'NTFS') {
    Stop-Bootstrap "EBS volume $ShareVolumeId holds $fileSystem, not NTFS: refusing to use it"
  }
  if ([string]$partition.DriveLetter -ne $letter) {
    if (Get-Volume -DriveLetter $letter -ErrorAction SilentlyContinue) {
      Stop-Bootstrap "drive letter $letter is taken: set fme.systemSharePath on a free letter"
    }
    Set-Partition -DiskNumber $disk.Number -PartitionNumber $partition.PartitionNumber -NewDriveLetter $letter
  }
  $marker = $letter + ':\.fme-aa-share'
  if (Test-Path -LiteralPath $marker) {
    $owner = (Get-Content -LiteralPath $marker -TotalCount 1).Trim()
    if ($owner -ne $NodeName) { Stop-Bootstrap "this share belongs to node $owner, not to $NodeName" }
    Write-Log "share $SystemSharePath is this node's ($ShareVolumeId)"
    return
  }
  if (-not (Test-Path -LiteralPath $InitialShareDir)) {
    Stop-Bootstrap "the image has no initial share content at $InitialShareDir (fme.initialShareDir)"
  }
  Write-Log "seeding the new share $SystemSharePath with the image's $InitialShareDir"
  New-Item -ItemType Directory -Force -Path $SystemSharePath | Out-Null
  $copy = Invoke-Native 'robocopy.exe' @($InitialShareDir, $SystemSharePath, '/E', '/COPY:DAT', '/R:2', '/W:5', '/NP', '/NFL', '/NDL')
  if ($copy.Code -ge 8) { Stop-Bootstrap "copying the initial share content failed: $($copy.Output)" }
  # From FME Flow 2026.2 the services may run as their own virtual accounts (Safe's script
  # grants them the share); a name that does not resolve is skipped, as Safe does.
  foreach ($name in $FmeServices) {
    $account = 'NT SERVICE\' + $name
    try {
      $null = (New-Object System.Security.Principal.NTAccount($account)).Translate([System.Security.Principal.SecurityIdentifier])
    } catch {
      continue
    }
    $grant = Invoke-Native 'icacls.exe' @($SystemSharePath, '/grant', ($account + ':(OI)(CI)M'), '/Q')
    if ($grant.Code -ne 0) { Stop-Bootstrap "icacls could not grant $account the share: $($grant.Output)" }
  }
  Set-Content -LiteralPath $marker -Value $NodeName
}

# --- 4. the RDS master credentials, at boot (never in user data) ---------------------------------
function Read-MasterSecret {
  $region = Get-Metadata 'placement/region'
  if (Get-Command Get-SECSecretValue -ErrorAction SilentlyContinue) {
    $json = (Get-SECSecretValue -SecretId $DbSecretArn -Region $region).SecretString
  } elseif (Get-Command aws.exe -ErrorAction SilentlyContinue) {
    $json = & aws.exe secretsmanager get-secret-value --region $region --secret-id $DbSecretArn --query SecretString --output text
  } else {
    Stop-Bootstrap 'the image needs AWS Tools for PowerShell (Get-SECSecretValue) or the AWS CLI'
  }
  $script:Master = ($json -join "`n") | ConvertFrom-Json
  # FME's own role gets a password made here; RDS rotating the master password leaves it alone.
  $script:FmeDbPassword = New-Password
}

# --- 5. values-modified.yml beside values.yml, then confd once -----------------------------------
function Update-FmeConfig {
  $privateIp = Get-Metadata 'local-ipv4'
  $kinds = @{
    private_ip = $privateIp; external_host = $ExternalHost; external_port = $ExternalPort
    web_port = $WebPort; db_host = $DbHost; db_port = $DbPort; db_password = $script:FmeDbPassword
    jdbc_url = ('jdbc:postgresql://{0}:{1}/{2}' -f $DbHost, $DbPort, $DbName)
    log_prefix = $privateIp + '_'; unused_password = (New-Password)
    share_dir = $SystemSharePath.Replace('\', '/'); redis_dir = 'C:/REDISDIR/'; true = 'true'
  }
  New-Item -ItemType Directory -Force -Path 'C:\REDISDIR' | Out-Null
  $lines = foreach ($entry in $ValuesKeys) {
    $key, $kind = $entry -split '=', 2
    if (-not $kinds.ContainsKey($kind)) { Stop-Bootstrap "no value for $key ($kind)" }
    '{0}: "{1}"' -f $key, ([string]$kinds[$kind]).Replace('\', '\\').Replace('"', '\"')
  }
  # Only SYSTEM and Administrators may read the file that holds the FME role's password.
  Write-Utf8File $ValuesModifiedFile ''
  $acl = Invoke-Native 'icacls.exe' @($ValuesModifiedFile, '/inheritance:r', '/grant:r', '*S-1-5-18:F', '*S-1-5-32-544:F')
  if ($acl.Code -ne 0) { Stop-Bootstrap "icacls could not protect $ValuesModifiedFile" }
  Write-Utf8File $ValuesModifiedFile (($lines -join "`n") + "`n")
  # values.yml ships with placeholders confd cannot read; values-modified.yml sets the real values.
  $defaults = [System.IO.File]::ReadAllText($ValuesFile)
  if ($defaults.Contains('<<DATABASE_PASSWORD>>') -or $defaults.Contains('<<POSTGRES_ROOT_PASSWORD>>')) {
    $defaults = $defaults.Replace('<<DATABASE_PASSWORD>>', '"see-values-modified"').Replace('<<POSTGRES_ROOT_PASSWORD>>', '"see-values-modified"')
    Write-Utf8File $ValuesFile $defaults
  }
  Push-Location (Split-Path -Parent $Confd)
  try { $run = Invoke-Native $Confd $ConfdArgs } finally { Pop-Location }
  if ($run.Output) { Add-Content -LiteralPath $LogFile -Value $run.Output }
  if ($run.Code -ne 0) { Stop-Bootstrap "confd failed (exit $($run.Code))" }
}

# --- 6. TLS and FME's role in the two database config files confd wrote -------------------------
function Set-DatabaseTls {
  foreach ($file in $DbConfigFiles) {
    if (-not (Test-Path -LiteralPath $file)) { Stop-Bootstrap "$file not found after confd" }
    $out = foreach ($line in ([System.IO.File]::ReadAllText($file) -split '\r?\n')) {
      if ($line -match '^\s*DB_USERNAME\s*=') {
        'DB_USERNAME=' + $DbUser
      } elseif ($line -match 'jdbc:postgresql://' -and $line -notmatch 'sslmode=') {
        if ($line.Contains('?')) { $line + '&sslmode=require' } else { $line + '?sslmode=require' }
      } else {
        $line
      }
    }
    Write-Utf8File $file ((($out -join "`n").TrimEnd("`n")) + "`n")
  }
}

# --- 7. role, database and schema with FME's own scripts, only where the schema is missing -------
function Invoke-Psql([string]$User, [string]$Password, [string]$Database, [string[]]$Arguments, [string]$InputText = '') {
  $env:PGPASSWORD = $Password
  $env:PGSSLMODE = 'require'
  try {
    $common = @('-h', $DbHost, '-p', $DbPort, '-U', $User, '-d', $Database, '-X', '-w', '-v', 'ON_ERROR_STOP=1')
    Invoke-Native (Join-Path $PgBinDir 'psql.exe') ($common + $Arguments) $InputText
  } finally {
    Remove-Item Env:PGPASSWORD -ErrorAction SilentlyContinue
  }
}

function Invoke-MasterQuery([string]$Database, [string]$Sql) {
  $result = Invoke-Psql $script:Master.username $script:Master.password $Database @('-tAc', $Sql)
  if ($result.Code -ne 0) { Stop-Bootstrap "query on $Database failed: $($result.Output)" }
  $result.Output
}

function Invoke-FmeScript([string]$User, [string]$Password, [string]$Database, [string]$Name) {
  $result = Invoke-Psql $User $Password $Database @('-f', (Join-Path $SqlDir $Name))
  Add-Content -LiteralPath $LogFile -Value $result.Output
  if ($result.Code -ne 0) { Stop-Bootstrap "$Name failed (exit $($result.Code))" }
}

function Initialize-Database {
  $ready = $false
  for ($try = 0; $try -lt 60 -and -not $ready; $try++) {
    $ready = (Invoke-Native (Join-Path $PgBinDir 'pg_isready.exe') @('-h', $DbHost, '-p', $DbPort, '-t', '5')).Code -eq 0
    if (-not $ready) { Start-Sleep -Seconds 10 }
  }
  if (-not $ready) { Stop-Bootstrap "database ${DbHost}:$DbPort not ready after 600 s" }
  $master, $masterPassword = $script:Master.username, $script:Master.password
  # Each of FME's scripts runs only while what it creates is missing, so when the schema
  # (fme_config_props) exists none runs, and a run that stopped half-way resumes.
  if ((Invoke-MasterQuery 'postgres' "select count(*) from pg_roles where rolname = '$DbUser'") -ne '1') {
    Invoke-FmeScript $master $masterPassword 'postgres' 'postgresql_createUser.sql'
  }
  # createUser.sql gives the role a known password; it gets this node's own before any use.
  $sql = "alter role `"$DbUser`" with login password '$($script:FmeDbPassword)';"
  $set = Invoke-Psql $master $masterPassword 'postgres' @('-q') $sql
  if ($set.Code -ne 0) { Stop-Bootstrap "could not set the password of role $DbUser (exit $($set.Code))" }
  if ((Invoke-MasterQuery 'postgres' "select count(*) from pg_database where datname = '$DbName'") -ne '1') {
    # PostgreSQL 16 lets the RDS admin create a database owned by the FME role only as a
    # member of it (our inference; createDB.sql's content is not public).
    $null = Invoke-MasterQuery 'postgres' ('grant "{0}" to current_user' -f $DbUser)
    Invoke-FmeScript $master $masterPassword 'postgres' 'postgresql_createDB.sql'
  }
  $query = "select count(*) from information_schema.tables where table_name = 'fme_config_props'"
  $schema = Invoke-Psql $DbUser $script:FmeDbPassword $DbName @('-tAc', $query)
  if ($schema.Code -ne 0) { Stop-Bootstrap "cannot read $DbName as ${DbUser}: $($schema.Output)" }
  if ($schema.Output -eq '1') {
    Write-Log "the FME schema exists in $DbName (fme_config_props): createSchema.sql is not run again"
  } else {
    Invoke-FmeScript $DbUser $script:FmeDbPassword $DbName 'postgresql_createSchema.sql'
  }
  $script:Master = $null
}

# --- 8/9. FME started on its own share and database, then healthy --------------------------------
function Start-Fme {
  if (-not (Get-NetFirewallRule -DisplayName 'fme-aa FME' -ErrorAction SilentlyContinue)) {
    New-NetFirewallRule -DisplayName 'fme-aa FME' -Direction Inbound -Protocol TCP -LocalPort $FirewallPorts -Action Allow | Out-Null
  }
  foreach ($name in $FmeServices) {
    Set-Service -Name $name -StartupType Automatic
    Start-Service -Name $name
  }
}

function Wait-Healthy {
  for ($try = 0; $try -lt 90; $try++) {
    try {
      if ((Invoke-WebRequest -Uri $HealthUrl -UseBasicParsing -TimeoutSec 10).StatusCode -eq 200) { return }
    } catch {
      Write-Verbose 'not healthy yet'
    }
    Start-Sleep -Seconds 10
  }
  Stop-Bootstrap "$HealthUrl did not answer 200 within 900 s"
}

# bootstrap.done names the instance it was written on: an instance made from an image of a
# configured node (ami.fromInstance) carries that node's file, but is a new machine that must
# still be pointed at its own share and database.
function Test-ConfiguredHere {
  if (-not (Test-Path -LiteralPath $DoneFile)) { return $false }
  $here = [string](Get-Metadata 'instance-id')
  $written = ([string](Get-Content -LiteralPath $DoneFile -TotalCount 1) -split ' ')[0]
  if ($written -eq $here) { return $true }
  Write-Log "bootstrap.done was written on $written, not on ${here}: a clone, configuring it"
  return $false
}

if (Test-ConfiguredHere) {
  Write-Log "already configured on $(Get-Content -LiteralPath $DoneFile); nothing to do"
  exit 0
}
trap { Stop-Bootstrap "stopped: $($_.Exception.Message)" }
Invoke-Step "check the installed FME release" { Confirm-Release }
Invoke-Step "stop FME" { Stop-Fme }
Invoke-Step "bring up this node's own share" { Mount-Share }
Invoke-Step "read the database master secret" { Read-MasterSecret }
Invoke-Step "write values-modified.yml and run confd" { Update-FmeConfig }
Invoke-Step "require TLS for FME's database connections" { Set-DatabaseTls }
Invoke-Step "create the FME database with FME's own scripts" { Initialize-Database }
Invoke-Step "start FME" { Start-Fme }
Invoke-Step "wait for FME's liveness health check" { Wait-Healthy }
$finished = (Get-Date).ToUniversalTime().ToString('yyyy-MM-ddTHH:mm:ssZ')
Set-Content -LiteralPath $DoneFile -Value ('{0} {1}' -f (Get-Metadata 'instance-id'), $finished)
Write-Log 'bootstrap complete: FME is healthy on its own share and database'
