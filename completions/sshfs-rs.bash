_sshfs__rs() {
    local i cur prev opts cmd
    COMPREPLY=()
    if [[ "${BASH_VERSINFO[0]}" -ge 4 ]]; then
        cur="$2"
    else
        cur="${COMP_WORDS[COMP_CWORD]}"
    fi
    prev="$3"
    cmd=""
    opts=""

    for i in "${COMP_WORDS[@]:0:COMP_CWORD}"
    do
        case "${cmd},${i}" in
            ",$1")
                cmd="sshfs__rs"
                ;;
            *)
                ;;
        esac
    done

    case "${cmd}" in
        sshfs__rs)
            opts="-p -F -f -d -v -C -1 -s -o -h -V --flush --stats --store-password --forget-password --store-passphrase --forget-passphrase --debug --verbose --help --version"
            if [[ ${cur} == -* || ${COMP_CWORD} -eq 1 ]] ; then
                COMPREPLY=( $(compgen -W "${opts}" -- "${cur}") )
                return 0
            fi
            case "${prev}" in
                --flush)
                    COMPREPLY=()
                    if [[ "${BASH_VERSINFO[0]}" -ge 4 ]]; then
                        compopt -o plusdirs
                    fi
                    return 0
                    ;;
                --stats)
                    COMPREPLY=()
                    if [[ "${BASH_VERSINFO[0]}" -ge 4 ]]; then
                        compopt -o plusdirs
                    fi
                    return 0
                    ;;
                --store-password)
                    COMPREPLY=($(compgen -f "${cur}"))
                    return 0
                    ;;
                --forget-password)
                    COMPREPLY=($(compgen -f "${cur}"))
                    return 0
                    ;;
                --store-passphrase)
                    COMPREPLY=($(compgen -f "${cur}"))
                    return 0
                    ;;
                --forget-passphrase)
                    COMPREPLY=($(compgen -f "${cur}"))
                    return 0
                    ;;
                -p)
                    COMPREPLY=($(compgen -f "${cur}"))
                    return 0
                    ;;
                -F)
                    local oldifs
                    if [ -n "${IFS+x}" ]; then
                        oldifs="$IFS"
                    fi
                    IFS=$'\n'
                    COMPREPLY=($(compgen -f "${cur}"))
                    if [ -n "${oldifs+x}" ]; then
                        IFS="$oldifs"
                    fi
                    if [[ "${BASH_VERSINFO[0]}" -ge 4 ]]; then
                        compopt -o filenames
                    fi
                    return 0
                    ;;
                -o)
                    COMPREPLY=($(compgen -W "IdentityFile= User= Port= UserKnownHostsFile= StrictHostKeyChecking= BatchMode= ConnectTimeout= ServerAliveInterval= ProxyJump= ProxyCommand= Compression= Ciphers= KexAlgorithms= MACs= HostKeyAlgorithms= PubkeyAcceptedAlgorithms= PubkeyAcceptedKeyTypes= IdentitiesOnly= IdentityAgent= CertificateFile= AddressFamily= HostKeyAlias= GlobalKnownHostsFile= CheckHostIP= ConnectionAttempts= PreferredAuthentications= PubkeyAuthentication= PasswordAuthentication= KbdInteractiveAuthentication= ChallengeResponseAuthentication= LogLevel= ServerAliveCountMax= ro rw nosuid suid nodev dev noexec exec relatime noatime atime strictatime nodiratime diratime sync async dirsync fsname= subtype= allow_other allow_root auto_unmount default_permissions max_read= max_write= max_background= large_read sync_read async_read kernel_cache auto_cache noauto_cache direct_io writeback_cache no_rofd_flush umask= uid= gid= ac_attr_timeout= noforget remember= modules= subdir= rellinks norellinks from_code= to_code= debug reconnect delay_connect sshfs_sync no_readahead sync_readdir workaround= idmap= uidfile= gidfile= nomap= ssh_command= ssh_protocol= sftp_server= directport= passive disable_hardlink transform_symlinks contain_symlinks no_contain_symlinks follow_symlinks no_check_root password_stdin keyring= max_conns= symlink_order= hard_remove timeout= reconnect_timeout= attr_timeout= entry_timeout= negative_timeout= cache= dir_cache= cache_timeout= dcache_timeout= cache_stat_timeout= dcache_stat_timeout= cache_dir_timeout= dcache_dir_timeout= cache_link_timeout= dcache_link_timeout= recheck= cache_max_size= dcache_max_size= cache_max_bytes= data_cache data_cache_size= cache_clean_interval= dcache_clean_interval= cache_min_clean_interval= dcache_min_clean_interval= defaults auto noauto user users nouser owner group _netdev nofail comment setuid= drop_privileges" -- "${cur}"))
                    return 0
                    ;;
                *)
                    COMPREPLY=()
                    ;;
            esac
            COMPREPLY=( $(compgen -W "${opts}" -- "${cur}") )
            return 0
            ;;
    esac
}

if [[ "${BASH_VERSINFO[0]}" -eq 4 && "${BASH_VERSINFO[1]}" -ge 4 || "${BASH_VERSINFO[0]}" -gt 4 ]]; then
    complete -F _sshfs__rs -o nosort -o bashdefault -o default sshfs-rs
else
    complete -F _sshfs__rs -o bashdefault -o default sshfs-rs
fi
