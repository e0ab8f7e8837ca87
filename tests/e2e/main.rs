//! The end-to-end tests, one binary: each module is what a user (or an admin) does, named after it
//! (`e2e::multiuser_attacks::...`); `support` is what they share. They run against the embedded
//! devstack, mount real FUSE filesystems and, as root, create Unix users and touch /etc/fstab and
//! PAM files (README, Set-up).

mod support;

mod big_file_uploads_while_written;
mod cache_survives_remount;
mod credentials_sts;
mod doctor_diagnoses_staged_faults;
mod faults_through_the_mount;
mod find_over_many_objects;
mod fstab_mount;
mod fstab_packaging;
mod identity_no_secrets_in_output;
mod identity_token_verification;
mod init_writes_a_checked_profile;
mod login_browser_url_is_private;
mod login_rejects_tokens_with_bad_times;
mod login_warns_about_clock_skew;
mod login_with_browser;
mod login_with_device_code;
mod metadata_that_sticks;
mod mount_buckets;
mod mount_command;
mod mount_waits_for_a_new_login;
mod multiuser_attacks;
mod multiuser_first_access;
mod multiuser_mount;
mod multiuser_scale;
mod multiuser_shared_cache;
mod multiuser_staging_quota;
mod multiuser_status;
mod named_buckets;
mod oversized_tokens;
mod pam_mount_home_mount;
mod posix_several_handles;
mod real_servers;
mod real_tools;
mod recover_refuses_hostile_staging;
mod recover_reports_each_file;
mod rename_flags;
mod sign_in_needed_notifies_the_desktop;
mod small_writes_with_writeback_cache;
mod status_of_a_busy_mount;
mod status_shows_the_signed_in_user;
mod systemd_automount_from_fstab;
mod tls_devstack;
mod token_refresh;
mod uploads_every_server_accepts;
mod user_mounts_from_fstab;
mod user_unit_notifies_systemd;
