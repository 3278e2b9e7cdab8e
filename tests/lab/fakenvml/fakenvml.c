/* Provides a fake libnvidia-ml.so.1: the NVML calls the GPU probe, gpustat and nvitop use, answered from a state file.
 *
 * Build: gcc -shared -fPIC -O2 -Wl,-soname,libnvidia-ml.so.1 -o DIR/libnvidia-ml.so.1 fakenvml.c -lpthread
 * Load:  LD_LIBRARY_PATH=DIR FAKE_NVML_STATE=/path/to/state  (the real nvidia-ml-py does CDLL("libnvidia-ml.so.1"))
 *
 * The state file is line based ("key value", one GPU section per "gpu" line; written by
 * tests/lab/fakenvml/state.py). It is re-read whenever its inode, size or mtime changes, so a test
 * can change values while a process keeps NVML open. Every entry point takes one mutex.
 * Functions that are not here make nvidia-ml-py raise NVMLError_FunctionNotFound, as with an old driver.
 */
#define _GNU_SOURCE
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

typedef int nvmlReturn_t;

#define NVML_SUCCESS 0
#define NVML_ERROR_UNINITIALIZED 1
#define NVML_ERROR_INVALID_ARGUMENT 2
#define NVML_ERROR_NOT_SUPPORTED 3
#define NVML_ERROR_NOT_FOUND 6
#define NVML_ERROR_INSUFFICIENT_SIZE 7
#define NVML_ERROR_DRIVER_NOT_LOADED 9
#define NVML_ERROR_GPU_IS_LOST 15
#define NVML_ERROR_ARGUMENT_VERSION_MISMATCH 25
#define NVML_ERROR_UNKNOWN 999

#define MAXG 16
#define MAXM 7
#define MAXP 64
#define MAXL 36
#define STR 128

/* feature bits for "unsupported" */
enum {
    F_UTIL = 1 << 0, F_MEM = 1 << 1, F_TEMP = 1 << 2, F_TEMP_THRESHOLD = 1 << 3, F_POWER = 1 << 4,
    F_POWER_LIMIT = 1 << 5, F_CLOCKS = 1 << 6, F_THROTTLE = 1 << 7, F_ECC = 1 << 8, F_RETIRED_PAGES = 1 << 9,
    F_REMAP = 1 << 10, F_MIG = 1 << 11, F_NVLINK = 1 << 12, F_PROCESSES = 1 << 13, F_FAN = 1 << 14,
    F_ENC = 1 << 15, F_PCI = 1 << 16, F_MEM_V2 = 1 << 17,
};

static const struct { const char *name; unsigned bit; } FEATURES[] = {
    {"util", F_UTIL}, {"mem", F_MEM}, {"temp", F_TEMP}, {"temp_threshold", F_TEMP_THRESHOLD},
    {"power", F_POWER}, {"power_limit", F_POWER_LIMIT}, {"clocks", F_CLOCKS}, {"throttle", F_THROTTLE},
    {"ecc", F_ECC}, {"retired_pages", F_RETIRED_PAGES}, {"remap", F_REMAP}, {"mig", F_MIG},
    {"nvlink", F_NVLINK}, {"processes", F_PROCESSES}, {"fan", F_FAN}, {"enc", F_ENC}, {"pci", F_PCI},
    {"mem_v2", F_MEM_V2},
};

typedef struct {
    unsigned gi, ci;
    unsigned long long mem_total, mem_used;
    char uuid[STR], profile[STR];
} mig_t;

typedef struct {
    unsigned pid, gi, ci;
    unsigned long long used;
} proc_t;

typedef struct {
    char uuid[STR], name[STR], pci[STR];
    unsigned util_gpu, util_mem;
    unsigned long long mem_total, mem_used, mem_reserved;
    unsigned temp, temp_slowdown, temp_shutdown, temp_mem_max, temp_gpu_max;
    unsigned power_mw, power_limit_mw;
    unsigned sm_clock, mem_clock;
    unsigned long long throttle;
    int ecc_mode;
    unsigned long long ecc_cv, ecc_uv, ecc_ca, ecc_ua;
    int retired_pending;
    unsigned remap_corr, remap_unc, remap_pending, remap_failure;
    int mig_mode;
    int nmig;
    mig_t migs[MAXM];
    int nvlinks;
    int nvlink_down[MAXL];
    int nproc;
    proc_t procs[MAXP];
    int lost; /* 1: queries fail with GPU_IS_LOST; 2: getting its handle fails too */
    int fan;  /* -1: no fan */
    unsigned unsupported;
} gpu_t;

typedef struct {
    char driver[STR];
    int cuda;
    int count;
    int init_error;
    int ngpu;
    gpu_t gpus[MAXG];
} state_t;

/* opaque handles handed out: a GPU's or a MIG device's */
typedef struct {
    int kind; /* 0 gpu, 1 mig */
    int gpu;
    int mig;
} handle_t;

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static state_t st;
static handle_t gpu_handles[MAXG];
static handle_t mig_handles[MAXG][MAXM];
static int refcount = 0;
static int loaded = 0;
static struct stat loaded_stat;

/* ------------------------------------------------------------------------------ state file */
static void copy_str(char *dst, const char *src) {
    snprintf(dst, STR, "%s", src);
}

static unsigned parse_features(char *value) {
    unsigned bits = 0;
    char *save = NULL;
    for (char *tok = strtok_r(value, " ,", &save); tok; tok = strtok_r(NULL, " ,", &save)) {
        for (size_t i = 0; i < sizeof(FEATURES) / sizeof(FEATURES[0]); i++)
            if (strcmp(tok, FEATURES[i].name) == 0) bits |= FEATURES[i].bit;
    }
    return bits;
}

static void gpu_defaults(gpu_t *g, int index) {
    memset(g, 0, sizeof(*g));
    snprintf(g->uuid, STR, "GPU-00000000-0000-0000-0000-%012d", index);
    copy_str(g->name, "NVIDIA H100 80GB HBM3");
    snprintf(g->pci, STR, "00000000:%02X:00.0", 0x18 + index);
    g->mem_total = 85520809984ULL;
    g->temp_slowdown = 87;
    g->temp_shutdown = 92;
    g->temp_mem_max = 95;
    g->temp_gpu_max = 87;
    g->power_limit_mw = 700000;
    g->ecc_mode = 1;
    g->fan = -1;
}

static int parse_state(const char *path, state_t *out) {
    FILE *fh = fopen(path, "r");
    if (!fh) return -1;
    memset(out, 0, sizeof(*out));
    copy_str(out->driver, "550.54.15");
    out->cuda = 12040;
    out->count = -1;
    char line[1024];
    gpu_t *g = NULL;
    while (fgets(line, sizeof(line), fh)) {
        size_t n = strlen(line);
        while (n && (line[n - 1] == '\n' || line[n - 1] == '\r')) line[--n] = 0;
        if (!n || line[0] == '#') continue;
        char *value = strchr(line, ' ');
        if (value) *value++ = 0; else value = line + n;
        const char *key = line;
        if (strcmp(key, "gpu") == 0) {
            if (out->ngpu >= MAXG) { g = NULL; continue; }
            g = &out->gpus[out->ngpu];
            gpu_defaults(g, out->ngpu);
            out->ngpu++;
            continue;
        }
        if (!g) {
            if (strcmp(key, "driver") == 0) copy_str(out->driver, value);
            else if (strcmp(key, "cuda") == 0) out->cuda = atoi(value);
            else if (strcmp(key, "count") == 0) out->count = atoi(value);
            else if (strcmp(key, "init_error") == 0) out->init_error = atoi(value);
            continue; /* other top-level keys belong to the python fakes (nvidia-smi, kernel log) */
        }
        if (strcmp(key, "uuid") == 0) copy_str(g->uuid, value);
        else if (strcmp(key, "name") == 0) copy_str(g->name, value);
        else if (strcmp(key, "pci") == 0) copy_str(g->pci, value);
        else if (strcmp(key, "util") == 0) sscanf(value, "%u %u", &g->util_gpu, &g->util_mem);
        else if (strcmp(key, "mem") == 0) sscanf(value, "%llu %llu %llu", &g->mem_total, &g->mem_used, &g->mem_reserved);
        else if (strcmp(key, "temp") == 0) sscanf(value, "%u %u %u %u %u", &g->temp, &g->temp_slowdown, &g->temp_shutdown, &g->temp_mem_max, &g->temp_gpu_max);
        else if (strcmp(key, "power") == 0) sscanf(value, "%u %u", &g->power_mw, &g->power_limit_mw);
        else if (strcmp(key, "clocks") == 0) sscanf(value, "%u %u", &g->sm_clock, &g->mem_clock);
        else if (strcmp(key, "throttle") == 0) g->throttle = strtoull(value, NULL, 0);
        else if (strcmp(key, "ecc_mode") == 0) g->ecc_mode = atoi(value);
        else if (strcmp(key, "ecc") == 0) sscanf(value, "%llu %llu %llu %llu", &g->ecc_cv, &g->ecc_uv, &g->ecc_ca, &g->ecc_ua);
        else if (strcmp(key, "retired_pending") == 0) g->retired_pending = atoi(value);
        else if (strcmp(key, "remap") == 0) sscanf(value, "%u %u %u %u", &g->remap_corr, &g->remap_unc, &g->remap_pending, &g->remap_failure);
        else if (strcmp(key, "mig_mode") == 0) g->mig_mode = atoi(value);
        else if (strcmp(key, "mig") == 0 && g->nmig < MAXM) {
            mig_t *m = &g->migs[g->nmig];
            char uuid[STR] = "", profile[STR] = "";
            if (sscanf(value, "%u %u %llu %llu %127s %127s", &m->gi, &m->ci, &m->mem_total, &m->mem_used, uuid, profile) == 6) {
                copy_str(m->uuid, uuid);
                copy_str(m->profile, profile);
                g->nmig++;
            }
        } else if (strcmp(key, "nvlinks") == 0) g->nvlinks = atoi(value) > MAXL ? MAXL : atoi(value);
        else if (strcmp(key, "nvlink_down") == 0) {
            char *save = NULL;
            for (char *tok = strtok_r(value, " ,", &save); tok; tok = strtok_r(NULL, " ,", &save)) {
                int link = atoi(tok);
                if (link >= 0 && link < MAXL) g->nvlink_down[link] = 1;
            }
        } else if (strcmp(key, "proc") == 0 && g->nproc < MAXP) {
            proc_t *p = &g->procs[g->nproc];
            char used[64] = "";
            p->gi = p->ci = 0xFFFFFFFFu;
            if (sscanf(value, "%u %63s %u %u", &p->pid, used, &p->gi, &p->ci) >= 2) {
                p->used = strcmp(used, "na") == 0 ? 0xFFFFFFFFFFFFFFFFULL : strtoull(used, NULL, 10);
                g->nproc++;
            }
        } else if (strcmp(key, "lost") == 0) g->lost = atoi(value);
        else if (strcmp(key, "fan") == 0) g->fan = atoi(value);
        else if (strcmp(key, "unsupported") == 0) g->unsupported |= parse_features(value);
    }
    fclose(fh);
    if (out->count < 0 || out->count > out->ngpu) out->count = out->ngpu;
    return 0;
}

/* Re-read the state file when it changed. Caller holds the lock. 0 when a state is loaded. */
static int refresh(void) {
    const char *path = getenv("FAKE_NVML_STATE");
    struct stat sb;
    if (!path || stat(path, &sb) != 0) return loaded ? 0 : -1;
    if (loaded && sb.st_ino == loaded_stat.st_ino && sb.st_size == loaded_stat.st_size &&
        sb.st_mtim.tv_sec == loaded_stat.st_mtim.tv_sec && sb.st_mtim.tv_nsec == loaded_stat.st_mtim.tv_nsec)
        return 0;
    static state_t next;
    if (parse_state(path, &next) != 0) return loaded ? 0 : -1;
    st = next;
    loaded_stat = sb;
    loaded = 1;
    return 0;
}

/* ------------------------------------------------------------------------------ helpers */
#define LOCK() pthread_mutex_lock(&lock)
#define RETURN(rc) do { nvmlReturn_t rc_ = (rc); pthread_mutex_unlock(&lock); return rc_; } while (0)

/* Validate a handle; on success *gout is its GPU (and *mout its MIG instance, or NULL). Lock held. */
static nvmlReturn_t resolve(const void *device, unsigned feature, int allow_mig, gpu_t **gout, mig_t **mout) {
    if (refcount <= 0) return NVML_ERROR_UNINITIALIZED;
    refresh();
    const handle_t *h = (const handle_t *)device;
    int is_gpu = h >= &gpu_handles[0] && h < &gpu_handles[MAXG];
    int is_mig = h >= &mig_handles[0][0] && h < &mig_handles[0][0] + MAXG * MAXM;
    if (!h || (!is_gpu && !is_mig)) return NVML_ERROR_INVALID_ARGUMENT;
    if (h->gpu >= st.count) return NVML_ERROR_GPU_IS_LOST; /* enumerated before, gone now */
    gpu_t *g = &st.gpus[h->gpu];
    if (g->lost) return NVML_ERROR_GPU_IS_LOST;
    if (is_mig) {
        if (!allow_mig) return NVML_ERROR_NOT_SUPPORTED;
        if (!g->mig_mode || h->mig >= g->nmig) return NVML_ERROR_INVALID_ARGUMENT;
        if (mout) *mout = &g->migs[h->mig];
    } else if (mout) {
        *mout = NULL;
    }
    if (feature && (g->unsupported & feature)) return NVML_ERROR_NOT_SUPPORTED;
    *gout = g;
    return NVML_SUCCESS;
}

#define DEVICE(dev, feature) \
    gpu_t *g = NULL; \
    LOCK(); \
    { nvmlReturn_t r_ = resolve((dev), (feature), 0, &g, NULL); if (r_ != NVML_SUCCESS) RETURN(r_); }

#define DEVICE_OR_MIG(dev, feature) \
    gpu_t *g = NULL; \
    mig_t *m = NULL; \
    LOCK(); \
    { nvmlReturn_t r_ = resolve((dev), (feature), 1, &g, &m); if (r_ != NVML_SUCCESS) RETURN(r_); }

static nvmlReturn_t put_str(char *buf, unsigned length, const char *value) {
    if (!buf) return NVML_ERROR_INVALID_ARGUMENT;
    if (strlen(value) + 1 > length) return NVML_ERROR_INSUFFICIENT_SIZE;
    memcpy(buf, value, strlen(value) + 1);
    return NVML_SUCCESS;
}

/* ------------------------------------------------------------------------------ init */
nvmlReturn_t nvmlInitWithFlags(unsigned flags) {
    (void)flags;
    LOCK();
    if (refresh() != 0) RETURN(NVML_ERROR_DRIVER_NOT_LOADED);
    if (st.init_error) RETURN(st.init_error);
    if (!refcount) {
        for (int i = 0; i < MAXG; i++) {
            gpu_handles[i] = (handle_t){0, i, 0};
            for (int j = 0; j < MAXM; j++) mig_handles[i][j] = (handle_t){1, i, j};
        }
    }
    refcount++;
    RETURN(NVML_SUCCESS);
}

nvmlReturn_t nvmlInit_v2(void) { return nvmlInitWithFlags(0); }
nvmlReturn_t nvmlInit(void) { return nvmlInitWithFlags(0); }

nvmlReturn_t nvmlShutdown(void) {
    LOCK();
    if (refcount <= 0) RETURN(NVML_ERROR_UNINITIALIZED);
    refcount--;
    RETURN(NVML_SUCCESS);
}

const char *nvmlErrorString(nvmlReturn_t result) {
    switch (result) {
    case NVML_SUCCESS: return "Success";
    case NVML_ERROR_UNINITIALIZED: return "Uninitialized";
    case NVML_ERROR_INVALID_ARGUMENT: return "Invalid Argument";
    case NVML_ERROR_NOT_SUPPORTED: return "Not Supported";
    case NVML_ERROR_NOT_FOUND: return "Not Found";
    case NVML_ERROR_INSUFFICIENT_SIZE: return "Insufficient Size";
    case NVML_ERROR_DRIVER_NOT_LOADED: return "Driver Not Loaded";
    case NVML_ERROR_GPU_IS_LOST: return "GPU is lost";
    case NVML_ERROR_ARGUMENT_VERSION_MISMATCH: return "Argument version mismatch";
    default: return "Unknown Error";
    }
}

/* ------------------------------------------------------------------------------ system */
nvmlReturn_t nvmlSystemGetDriverVersion(char *version, unsigned length) {
    LOCK();
    if (refcount <= 0) RETURN(NVML_ERROR_UNINITIALIZED);
    refresh();
    RETURN(put_str(version, length, st.driver));
}

nvmlReturn_t nvmlSystemGetNVMLVersion(char *version, unsigned length) {
    char buf[STR + 8];
    LOCK();
    if (refcount <= 0) RETURN(NVML_ERROR_UNINITIALIZED);
    refresh();
    snprintf(buf, sizeof(buf), "12.%s", st.driver);
    RETURN(put_str(version, length, buf));
}

nvmlReturn_t nvmlSystemGetCudaDriverVersion(int *version) {
    LOCK();
    if (refcount <= 0) RETURN(NVML_ERROR_UNINITIALIZED);
    if (!version) RETURN(NVML_ERROR_INVALID_ARGUMENT);
    refresh();
    *version = st.cuda;
    RETURN(NVML_SUCCESS);
}

nvmlReturn_t nvmlSystemGetCudaDriverVersion_v2(int *version) { return nvmlSystemGetCudaDriverVersion(version); }

nvmlReturn_t nvmlSystemGetProcessName(unsigned pid, char *name, unsigned length) {
    char path[64], comm[STR] = "";
    snprintf(path, sizeof(path), "/proc/%u/comm", pid);
    FILE *fh = fopen(path, "r");
    if (!fh) return NVML_ERROR_NOT_FOUND;
    if (fgets(comm, sizeof(comm), fh)) comm[strcspn(comm, "\n")] = 0;
    fclose(fh);
    if (!name || length == 0) return NVML_ERROR_INVALID_ARGUMENT;
    snprintf(name, length, "%s", comm);
    return NVML_SUCCESS;
}

/* ------------------------------------------------------------------------------ enumeration */
nvmlReturn_t nvmlDeviceGetCount_v2(unsigned *count) {
    LOCK();
    if (refcount <= 0) RETURN(NVML_ERROR_UNINITIALIZED);
    if (!count) RETURN(NVML_ERROR_INVALID_ARGUMENT);
    refresh();
    *count = (unsigned)st.count;
    RETURN(NVML_SUCCESS);
}

nvmlReturn_t nvmlDeviceGetCount(unsigned *count) { return nvmlDeviceGetCount_v2(count); }

nvmlReturn_t nvmlDeviceGetHandleByIndex_v2(unsigned index, void **device) {
    LOCK();
    if (refcount <= 0) RETURN(NVML_ERROR_UNINITIALIZED);
    refresh();
    if (!device || index >= (unsigned)st.count) RETURN(NVML_ERROR_INVALID_ARGUMENT);
    if (st.gpus[index].lost >= 2) RETURN(NVML_ERROR_GPU_IS_LOST);
    *device = &gpu_handles[index];
    RETURN(NVML_SUCCESS);
}

nvmlReturn_t nvmlDeviceGetHandleByIndex(unsigned index, void **device) { return nvmlDeviceGetHandleByIndex_v2(index, device); }

nvmlReturn_t nvmlDeviceGetHandleByUUID(const char *uuid, void **device) {
    LOCK();
    if (refcount <= 0) RETURN(NVML_ERROR_UNINITIALIZED);
    refresh();
    if (!uuid || !device) RETURN(NVML_ERROR_INVALID_ARGUMENT);
    for (int i = 0; i < st.count; i++) {
        if (strcmp(st.gpus[i].uuid, uuid) == 0) {
            if (st.gpus[i].lost >= 2) RETURN(NVML_ERROR_GPU_IS_LOST);
            *device = &gpu_handles[i];
            RETURN(NVML_SUCCESS);
        }
        for (int j = 0; st.gpus[i].mig_mode && j < st.gpus[i].nmig; j++)
            if (strcmp(st.gpus[i].migs[j].uuid, uuid) == 0) {
                *device = &mig_handles[i][j];
                RETURN(NVML_SUCCESS);
            }
    }
    RETURN(NVML_ERROR_NOT_FOUND);
}

nvmlReturn_t nvmlDeviceGetHandleByPciBusId_v2(const char *bus_id, void **device) {
    LOCK();
    if (refcount <= 0) RETURN(NVML_ERROR_UNINITIALIZED);
    refresh();
    if (!bus_id || !device) RETURN(NVML_ERROR_INVALID_ARGUMENT);
    for (int i = 0; i < st.count; i++)
        if (strcasecmp(st.gpus[i].pci, bus_id) == 0 || strcasecmp(st.gpus[i].pci + 4, bus_id) == 0) {
            *device = &gpu_handles[i];
            RETURN(NVML_SUCCESS);
        }
    RETURN(NVML_ERROR_NOT_FOUND);
}

nvmlReturn_t nvmlDeviceGetIndex(void *device, unsigned *index) {
    DEVICE(device, 0);
    if (!index) RETURN(NVML_ERROR_INVALID_ARGUMENT);
    *index = (unsigned)(g - st.gpus);
    RETURN(NVML_SUCCESS);
}

nvmlReturn_t nvmlDeviceGetMinorNumber(void *device, unsigned *minor) {
    DEVICE(device, 0);
    if (!minor) RETURN(NVML_ERROR_INVALID_ARGUMENT);
    *minor = (unsigned)(g - st.gpus);
    RETURN(NVML_SUCCESS);
}

/* ------------------------------------------------------------------------------ identity */
nvmlReturn_t nvmlDeviceGetName(void *device, char *name, unsigned length) {
    DEVICE_OR_MIG(device, 0);
    if (m) {
        char buf[2 * STR + 8];
        snprintf(buf, sizeof(buf), "%s MIG %s", g->name, m->profile);
        RETURN(put_str(name, length, buf));
    }
    RETURN(put_str(name, length, g->name));
}

nvmlReturn_t nvmlDeviceGetUUID(void *device, char *uuid, unsigned length) {
    DEVICE_OR_MIG(device, 0);
    RETURN(put_str(uuid, length, m ? m->uuid : g->uuid));
}

typedef struct {
    char busIdLegacy[16];
    unsigned domain, bus, device, pciDeviceId, pciSubSystemId;
    char busId[32];
} nvmlPciInfo_t;

nvmlReturn_t nvmlDeviceGetPciInfo_v3(void *device, nvmlPciInfo_t *pci) {
    DEVICE(device, F_PCI);
    if (!pci) RETURN(NVML_ERROR_INVALID_ARGUMENT);
    memset(pci, 0, sizeof(*pci));
    unsigned fn = 0;
    sscanf(g->pci, "%x:%x:%x.%x", &pci->domain, &pci->bus, &pci->device, &fn);
    snprintf(pci->busId, sizeof(pci->busId), "%.31s", g->pci);
    snprintf(pci->busIdLegacy, sizeof(pci->busIdLegacy), "%04X:%02X:%02X.%X", pci->domain & 0xFFFF, pci->bus, pci->device, fn);
    pci->pciDeviceId = 0x233010DE;
    pci->pciSubSystemId = 0x16C110DE;
    RETURN(NVML_SUCCESS);
}

nvmlReturn_t nvmlDeviceGetPciInfo_v2(void *device, nvmlPciInfo_t *pci) { return nvmlDeviceGetPciInfo_v3(device, pci); }
nvmlReturn_t nvmlDeviceGetPciInfo(void *device, nvmlPciInfo_t *pci) { return nvmlDeviceGetPciInfo_v3(device, pci); }

nvmlReturn_t nvmlDeviceGetPersistenceMode(void *device, int *mode) {
    DEVICE(device, 0);
    if (!mode) RETURN(NVML_ERROR_INVALID_ARGUMENT);
    *mode = 1;
    RETURN(NVML_SUCCESS);
}

nvmlReturn_t nvmlDeviceGetPerformanceState(void *device, int *pstate) {
    DEVICE(device, 0);
    if (!pstate) RETURN(NVML_ERROR_INVALID_ARGUMENT);
    *pstate = g->util_gpu > 0 ? 0 : 8;
    RETURN(NVML_SUCCESS);
}

/* ------------------------------------------------------------------------------ readings */
typedef struct { unsigned gpu, memory; } nvmlUtilization_t;

nvmlReturn_t nvmlDeviceGetUtilizationRates(void *device, nvmlUtilization_t *util) {
    DEVICE(device, F_UTIL);
    if (!util) RETURN(NVML_ERROR_INVALID_ARGUMENT);
    util->gpu = g->util_gpu;
    util->memory = g->util_mem;
    RETURN(NVML_SUCCESS);
}

nvmlReturn_t nvmlDeviceGetEncoderUtilization(void *device, unsigned *util, unsigned *period_us) {
    DEVICE(device, F_ENC);
    if (!util || !period_us) RETURN(NVML_ERROR_INVALID_ARGUMENT);
    *util = 0;
    *period_us = 167000;
    RETURN(NVML_SUCCESS);
}

nvmlReturn_t nvmlDeviceGetDecoderUtilization(void *device, unsigned *util, unsigned *period_us) {
    return nvmlDeviceGetEncoderUtilization(device, util, period_us);
}

typedef struct { unsigned long long total, free, used; } nvmlMemory_t;
typedef struct { unsigned version; unsigned long long total, reserved, free, used; } nvmlMemory_v2_t;
#define NVML_MEMORY_V2 0x02000028u

nvmlReturn_t nvmlDeviceGetMemoryInfo(void *device, nvmlMemory_t *mem) {
    DEVICE_OR_MIG(device, F_MEM);
    if (!mem) RETURN(NVML_ERROR_INVALID_ARGUMENT);
    if (m) {
        mem->total = m->mem_total;
        mem->used = m->mem_used;
    } else {
        /* v1 counts the driver's reservation as used */
        mem->total = g->mem_total;
        mem->used = g->mem_used + g->mem_reserved;
    }
    mem->free = mem->total > mem->used ? mem->total - mem->used : 0;
    RETURN(NVML_SUCCESS);
}

nvmlReturn_t nvmlDeviceGetMemoryInfo_v2(void *device, nvmlMemory_v2_t *mem) {
    DEVICE_OR_MIG(device, F_MEM | F_MEM_V2);
    if (!mem) RETURN(NVML_ERROR_INVALID_ARGUMENT);
    if (mem->version != NVML_MEMORY_V2) RETURN(NVML_ERROR_ARGUMENT_VERSION_MISMATCH);
    if (m) {
        mem->total = m->mem_total;
        mem->reserved = 0;
        mem->used = m->mem_used;
    } else {
        mem->total = g->mem_total;
        mem->reserved = g->mem_reserved;
        mem->used = g->mem_used;
    }
    unsigned long long taken = mem->used + mem->reserved;
    mem->free = mem->total > taken ? mem->total - taken : 0;
    RETURN(NVML_SUCCESS);
}

nvmlReturn_t nvmlDeviceGetTemperature(void *device, int sensor, unsigned *temp) {
    DEVICE(device, F_TEMP);
    if (!temp || sensor != 0) RETURN(NVML_ERROR_INVALID_ARGUMENT);
    *temp = g->temp;
    RETURN(NVML_SUCCESS);
}

nvmlReturn_t nvmlDeviceGetTemperatureThreshold(void *device, int threshold, unsigned *temp) {
    DEVICE(device, F_TEMP_THRESHOLD);
    if (!temp) RETURN(NVML_ERROR_INVALID_ARGUMENT);
    switch (threshold) {
    case 0: *temp = g->temp_shutdown; break;
    case 1: *temp = g->temp_slowdown; break;
    case 2: *temp = g->temp_mem_max; break;
    case 3: *temp = g->temp_gpu_max; break;
    default: RETURN(NVML_ERROR_NOT_SUPPORTED);
    }
    RETURN(NVML_SUCCESS);
}

nvmlReturn_t nvmlDeviceGetFanSpeed(void *device, unsigned *speed) {
    DEVICE(device, F_FAN);
    if (!speed) RETURN(NVML_ERROR_INVALID_ARGUMENT);
    if (g->fan < 0) RETURN(NVML_ERROR_NOT_SUPPORTED);
    *speed = (unsigned)g->fan;
    RETURN(NVML_SUCCESS);
}

nvmlReturn_t nvmlDeviceGetPowerUsage(void *device, unsigned *power) {
    DEVICE(device, F_POWER);
    if (!power) RETURN(NVML_ERROR_INVALID_ARGUMENT);
    *power = g->power_mw;
    RETURN(NVML_SUCCESS);
}

nvmlReturn_t nvmlDeviceGetEnforcedPowerLimit(void *device, unsigned *limit) {
    DEVICE(device, F_POWER_LIMIT);
    if (!limit) RETURN(NVML_ERROR_INVALID_ARGUMENT);
    *limit = g->power_limit_mw;
    RETURN(NVML_SUCCESS);
}

nvmlReturn_t nvmlDeviceGetPowerManagementLimit(void *device, unsigned *limit) {
    return nvmlDeviceGetEnforcedPowerLimit(device, limit);
}

nvmlReturn_t nvmlDeviceGetClockInfo(void *device, int type, unsigned *clock) {
    DEVICE(device, F_CLOCKS);
    if (!clock) RETURN(NVML_ERROR_INVALID_ARGUMENT);
    switch (type) {
    case 0: /* graphics */
    case 1: *clock = g->sm_clock; break;
    case 2: *clock = g->mem_clock; break;
    case 3: *clock = g->sm_clock ? 1755 : 0; break;
    default: RETURN(NVML_ERROR_INVALID_ARGUMENT);
    }
    RETURN(NVML_SUCCESS);
}

nvmlReturn_t nvmlDeviceGetMaxClockInfo(void *device, int type, unsigned *clock) {
    DEVICE(device, F_CLOCKS);
    if (!clock) RETURN(NVML_ERROR_INVALID_ARGUMENT);
    switch (type) {
    case 0:
    case 1: *clock = 1980; break;
    case 2: *clock = 2619; break;
    case 3: *clock = 1755; break;
    default: RETURN(NVML_ERROR_INVALID_ARGUMENT);
    }
    RETURN(NVML_SUCCESS);
}

nvmlReturn_t nvmlDeviceGetCurrentClocksEventReasons(void *device, unsigned long long *reasons) {
    DEVICE(device, F_THROTTLE);
    if (!reasons) RETURN(NVML_ERROR_INVALID_ARGUMENT);
    *reasons = g->throttle;
    RETURN(NVML_SUCCESS);
}

nvmlReturn_t nvmlDeviceGetCurrentClocksThrottleReasons(void *device, unsigned long long *reasons) {
    return nvmlDeviceGetCurrentClocksEventReasons(device, reasons);
}

/* ------------------------------------------------------------------------------ memory health */
nvmlReturn_t nvmlDeviceGetEccMode(void *device, int *current, int *pending) {
    DEVICE(device, F_ECC);
    if (!current || !pending) RETURN(NVML_ERROR_INVALID_ARGUMENT);
    *current = *pending = g->ecc_mode ? 1 : 0;
    RETURN(NVML_SUCCESS);
}

nvmlReturn_t nvmlDeviceGetTotalEccErrors(void *device, int error_type, int counter_type, unsigned long long *count) {
    DEVICE(device, F_ECC);
    if (!count || error_type < 0 || error_type > 1 || counter_type < 0 || counter_type > 1) RETURN(NVML_ERROR_INVALID_ARGUMENT);
    if (!g->ecc_mode) RETURN(NVML_ERROR_NOT_SUPPORTED);
    if (error_type == 0) *count = counter_type == 0 ? g->ecc_cv : g->ecc_ca;
    else *count = counter_type == 0 ? g->ecc_uv : g->ecc_ua;
    RETURN(NVML_SUCCESS);
}

nvmlReturn_t nvmlDeviceGetRetiredPagesPendingStatus(void *device, int *pending) {
    DEVICE(device, F_RETIRED_PAGES);
    if (!pending) RETURN(NVML_ERROR_INVALID_ARGUMENT);
    *pending = g->retired_pending ? 1 : 0;
    RETURN(NVML_SUCCESS);
}

nvmlReturn_t nvmlDeviceGetRemappedRows(void *device, unsigned *corr, unsigned *unc, unsigned *pending, unsigned *failure) {
    DEVICE(device, F_REMAP);
    if (!corr || !unc || !pending || !failure) RETURN(NVML_ERROR_INVALID_ARGUMENT);
    *corr = g->remap_corr;
    *unc = g->remap_unc;
    *pending = g->remap_pending ? 1 : 0;
    *failure = g->remap_failure ? 1 : 0;
    RETURN(NVML_SUCCESS);
}

/* ------------------------------------------------------------------------------ MIG */
nvmlReturn_t nvmlDeviceGetMigMode(void *device, unsigned *current, unsigned *pending) {
    DEVICE(device, F_MIG);
    if (!current || !pending) RETURN(NVML_ERROR_INVALID_ARGUMENT);
    *current = *pending = g->mig_mode ? 1 : 0;
    RETURN(NVML_SUCCESS);
}

nvmlReturn_t nvmlDeviceGetMaxMigDeviceCount(void *device, unsigned *count) {
    DEVICE(device, F_MIG);
    if (!count) RETURN(NVML_ERROR_INVALID_ARGUMENT);
    *count = MAXM;
    RETURN(NVML_SUCCESS);
}

nvmlReturn_t nvmlDeviceGetMigDeviceHandleByIndex(void *device, unsigned index, void **mig) {
    DEVICE(device, F_MIG);
    if (!mig || index >= MAXM) RETURN(NVML_ERROR_INVALID_ARGUMENT);
    if (!g->mig_mode || index >= (unsigned)g->nmig) RETURN(NVML_ERROR_NOT_FOUND);
    *mig = &mig_handles[g - st.gpus][index];
    RETURN(NVML_SUCCESS);
}

nvmlReturn_t nvmlDeviceIsMigDeviceHandle(void *device, unsigned *is_mig) {
    DEVICE_OR_MIG(device, 0);
    if (!is_mig) RETURN(NVML_ERROR_INVALID_ARGUMENT);
    *is_mig = m ? 1 : 0;
    RETURN(NVML_SUCCESS);
}

nvmlReturn_t nvmlDeviceGetGpuInstanceId(void *device, unsigned *id) {
    DEVICE_OR_MIG(device, 0);
    if (!id) RETURN(NVML_ERROR_INVALID_ARGUMENT);
    if (!m) RETURN(NVML_ERROR_NOT_SUPPORTED);
    *id = m->gi;
    RETURN(NVML_SUCCESS);
}

nvmlReturn_t nvmlDeviceGetComputeInstanceId(void *device, unsigned *id) {
    DEVICE_OR_MIG(device, 0);
    if (!id) RETURN(NVML_ERROR_INVALID_ARGUMENT);
    if (!m) RETURN(NVML_ERROR_NOT_SUPPORTED);
    *id = m->ci;
    RETURN(NVML_SUCCESS);
}

nvmlReturn_t nvmlDeviceGetDeviceHandleFromMigDeviceHandle(void *mig_device, void **device) {
    DEVICE_OR_MIG(mig_device, 0);
    if (!device || !m) RETURN(NVML_ERROR_INVALID_ARGUMENT);
    *device = &gpu_handles[g - st.gpus];
    RETURN(NVML_SUCCESS);
}

/* ------------------------------------------------------------------------------ NVLink */
nvmlReturn_t nvmlDeviceGetNvLinkState(void *device, unsigned link, int *active) {
    DEVICE(device, F_NVLINK);
    if (!active) RETURN(NVML_ERROR_INVALID_ARGUMENT);
    if (g->nvlinks == 0) RETURN(NVML_ERROR_NOT_SUPPORTED);
    if (link >= (unsigned)g->nvlinks) RETURN(NVML_ERROR_INVALID_ARGUMENT);
    *active = g->nvlink_down[link] ? 0 : 1;
    RETURN(NVML_SUCCESS);
}

/* ------------------------------------------------------------------------------ processes */
typedef struct { unsigned pid; unsigned long long usedGpuMemory; unsigned gpuInstanceId, computeInstanceId; } nvmlProcessInfo_v2_t;
typedef struct { unsigned pid; unsigned long long usedGpuMemory; } nvmlProcessInfo_v1_t;

/* The NVML contract: too small a buffer (or none) gives the count and INSUFFICIENT_SIZE; none at all is SUCCESS. */
static nvmlReturn_t list_procs(void *device, unsigned *count, void *infos, int v2, int graphics) {
    DEVICE_OR_MIG(device, F_PROCESSES);
    if (!count) RETURN(NVML_ERROR_INVALID_ARGUMENT);
    unsigned n = 0;
    const proc_t *sel[MAXP];
    for (int i = 0; !graphics && i < g->nproc; i++)
        if (!m || g->procs[i].gi == m->gi) sel[n++] = &g->procs[i];
    if (*count < n || (!infos && n)) {
        *count = n;
        RETURN(NVML_ERROR_INSUFFICIENT_SIZE);
    }
    for (unsigned i = 0; i < n; i++) {
        if (v2) {
            nvmlProcessInfo_v2_t *out = (nvmlProcessInfo_v2_t *)infos + i;
            out->pid = sel[i]->pid;
            out->usedGpuMemory = sel[i]->used;
            out->gpuInstanceId = sel[i]->gi;
            out->computeInstanceId = sel[i]->ci;
        } else {
            nvmlProcessInfo_v1_t *out = (nvmlProcessInfo_v1_t *)infos + i;
            out->pid = sel[i]->pid;
            out->usedGpuMemory = sel[i]->used;
        }
    }
    *count = n;
    RETURN(NVML_SUCCESS);
}

nvmlReturn_t nvmlDeviceGetComputeRunningProcesses_v3(void *d, unsigned *c, void *p) { return list_procs(d, c, p, 1, 0); }
nvmlReturn_t nvmlDeviceGetComputeRunningProcesses_v2(void *d, unsigned *c, void *p) { return list_procs(d, c, p, 1, 0); }
nvmlReturn_t nvmlDeviceGetComputeRunningProcesses(void *d, unsigned *c, void *p) { return list_procs(d, c, p, 0, 0); }
nvmlReturn_t nvmlDeviceGetGraphicsRunningProcesses_v3(void *d, unsigned *c, void *p) { return list_procs(d, c, p, 1, 1); }
nvmlReturn_t nvmlDeviceGetGraphicsRunningProcesses_v2(void *d, unsigned *c, void *p) { return list_procs(d, c, p, 1, 1); }
nvmlReturn_t nvmlDeviceGetGraphicsRunningProcesses(void *d, unsigned *c, void *p) { return list_procs(d, c, p, 0, 1); }
nvmlReturn_t nvmlDeviceGetMPSComputeRunningProcesses_v3(void *d, unsigned *c, void *p) { return list_procs(d, c, p, 1, 1); }
